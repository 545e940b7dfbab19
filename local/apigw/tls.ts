import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/**
 * Certificates for the emulator's `wss://` / `https://` endpoints, made on this machine: nothing
 * is downloaded. A local CA is created once under a directory (`.local/tls/ca` for `npm start` and
 * `npm run emulate`) and reused, so a client that trusts its `ca.pem` once keeps trusting every
 * later run; each start issues a fresh leaf for 127.0.0.1, ::1 and localhost signed by it.
 *
 * Node has no certificate builder, so the X.509 encoding is node-forge's (pure JS); the RSA keys
 * come from node:crypto, which is ~100× faster than forge's own key generation.
 */

export interface LocalCa {
  /** Absolute path of the CA certificate (PEM): what NODE_EXTRA_CA_CERTS / `ca` options take. */
  caFile: string;
  certPem: string;
  keyPem: string;
}

export interface ServerCert {
  cert: string;
  key: string;
  /** The CA certificate (PEM) that signed `cert`. */
  ca: string;
}

const CA_CERT = 'ca.pem';
const CA_KEY = 'ca-key.pem';
const DAY_MS = 86_400_000;

function rsaKeys(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
    keyPem: privateKey,
  };
}

/** A positive serial number (the top bit clear so DER does not read it as negative). */
function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

function makeCa(): { certPem: string; keyPem: string } {
  const keys = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * DAY_MS);
  const subject = [
    { name: 'commonName', value: 'realtime-gateway local CA' },
    { name: 'organizationName', value: 'realtime-gateway (local development only)' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/**
 * The CA in `dir` (created on first use). Concurrent first uses are safe: each builds its CA in a
 * private directory and renames it into place; a loser of the rename race uses the winner's.
 */
export function ensureLocalCa(dir: string): LocalCa {
  const abs = path.resolve(dir);
  const read = (): LocalCa | undefined => {
    const certFile = path.join(abs, CA_CERT);
    const keyFile = path.join(abs, CA_KEY);
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) return undefined;
    return { caFile: certFile, certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8') };
  };
  const existing = read();
  if (existing) return existing;
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = fs.mkdtempSync(`${abs}.tmp-`);
  const ca = makeCa();
  fs.writeFileSync(path.join(tmp, CA_KEY), ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(tmp, CA_CERT), ca.certPem);
  try {
    fs.renameSync(tmp, abs);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const made = read();
  if (!made) throw new Error(`could not create the local CA in ${abs}`);
  return made;
}

/** A server certificate for the loopback names, valid 30 days, signed by `ca`. */
export function issueServerCert(ca: LocalCa, hosts: readonly string[] = ['127.0.0.1', '::1', 'localhost']): ServerCert {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + 30 * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      // type 7 = iPAddress, 2 = dNSName (RFC 5280 GeneralName)
      altNames: hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? { type: 7, ip: h } : { type: 2, value: h })),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.keyPem, ca: ca.certPem };
}
