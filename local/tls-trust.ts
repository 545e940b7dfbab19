import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Makes this process trust the local CA, so handlers running in it reach the emulator's
 * `https://${domainName}/${stage}` with stock SDK clients (v3 and v2), as on AWS.
 *
 * Node reads NODE_EXTRA_CA_CERTS once, at process start, and there is no API to add a CA to the
 * default trust store later (Node 20). Patching every SDK client would not reach third-party
 * handlers, so the process re-executes itself once with NODE_EXTRA_CA_CERTS pointing at the CA
 * (bundled with any file the user had set), forwards signals, and exits with the child's code.
 *
 * Returns true in the parent (it must do nothing else) and false where the CA is already trusted.
 */
export function reexecTrusting(caFile: string, bundleDir: string): boolean {
  if (process.env.RTG_LOCAL_CA_TRUSTED === caFile) return false;
  let trustFile = caFile;
  const userCa = process.env.NODE_EXTRA_CA_CERTS;
  if (userCa && path.resolve(userCa) !== caFile && fs.existsSync(userCa)) {
    trustFile = path.join(bundleDir, 'trust-bundle.pem');
    fs.writeFileSync(trustFile, `${fs.readFileSync(userCa, 'utf8').trim()}\n${fs.readFileSync(caFile, 'utf8')}`);
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: trustFile, RTG_LOCAL_CA_TRUSTED: caFile },
  });
  // Ctrl-C reaches the whole process group (the child too); SIGTERM may reach only us.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return true;
}
