import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JavaMissingError, startDynamoDbLocal } from '../../../local/dynamodb-local';

/**
 * DynamoDB Local needs Java 17+. Without it `npm start` must stop with a message that says how
 * to install it — not a stack trace from a failed spawn. JAVA points the launcher at a JVM.
 */
describe('DynamoDB Local launcher: Java check', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-java-'));
  const saved = process.env.JAVA;
  afterEach(() => {
    if (saved === undefined) delete process.env.JAVA;
    else process.env.JAVA = saved;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function refusal(): Promise<JavaMissingError> {
    try {
      const running = await startDynamoDbLocal();
      await running.stop();
    } catch (err) {
      expect(err).to.be.instanceOf(JavaMissingError);
      return err as JavaMissingError;
    }
    throw new Error('startDynamoDbLocal started without a usable Java');
  }

  it('stops with install instructions when java is not installed', async () => {
    process.env.JAVA = path.join(dir, 'no-such-java');
    const err = await refusal();
    expect(err.code).to.equal('java_missing');
    expect(err.message).to.match(/Java 17 or newer/).and.match(/apt-get install -y openjdk-17-jre-headless/).and.match(/was not found/);
  });

  it('stops when the Java found is older than 17, naming the version', async () => {
    const fake = path.join(dir, 'java11');
    fs.writeFileSync(fake, '#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n', { mode: 0o755 });
    process.env.JAVA = fake;
    const err = await refusal();
    expect(err.message).to.match(/found Java 11/);
  });

  it('reads Java 8 style versions ("1.8.0_x") as 8', async () => {
    const fake = path.join(dir, 'java8');
    fs.writeFileSync(fake, '#!/bin/sh\necho \'java version "1.8.0_402"\' >&2\n', { mode: 0o755 });
    process.env.JAVA = fake;
    expect((await refusal()).message).to.match(/found Java 8/);
  });
});
