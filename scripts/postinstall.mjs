// After the package is installed or updated (`npm install -g` as root), bring
// root's installs made with it up to date at once: this package's module over
// the older copies, and views rebuilt by this package's engine
// (docs/install.md, "Updates"). Anything else (another user, a fresh clone
// before its build, no installs) is nothing to do. Never fails the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const module = fileURLToPath(new URL('../build/Release/libncfence.so', import.meta.url));
if (process.getuid?.() === 0 && existsSync(cli) && existsSync(module)) {
  spawnSync(process.execPath, [cli, 'refresh', '--hook', 'package'], { stdio: 'inherit', timeout: 600_000 });
}
