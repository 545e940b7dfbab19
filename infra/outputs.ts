import * as pulumi from '@pulumi/pulumi';

/** `{ a: Output<string>, b: Output<string> }` → `Output<{ a: string, b: string }>`, keeping key types. */
export function outputRecord<K extends string>(keys: readonly K[], value: (k: K) => pulumi.Input<string>): pulumi.Output<Record<K, string>> {
  return pulumi.all(keys.map((k) => value(k))).apply((vals) => Object.fromEntries(keys.map((k, i) => [k, vals[i]])) as Record<K, string>);
}
