// Runs code with extra variables in this process's environment (the build
// and pkcs11js read upstream in-process, and the test shim reads its
// settings from the environment), restoring what was there afterwards.
// Only from test.serial tests and hooks: ava runs a file's other tests at
// the same time, in this process, and they would see these variables too
// (a PATH changed here once hid p11tool from a concurrent test in CI).
// test/meta/env-serial.test.ts holds every test file to that.

export async function withEnv<T>(env: Record<string, string>, fn: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
