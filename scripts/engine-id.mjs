// Writes dist/engine-id: this package's version and a digest of the code
// that builds views (dist/: the compiled code, the CLI bundle and what it
// loads beside it) and of the module's sources (addon/). The module
// stamps the file's content (ncfence.conf `engine`), so installing another
// ncfence makes every view it built stale, and the next consumer to start
// gets a view built by the new one (docs/install.md, "Updates").
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const files = [];
const walk = (dir, keep) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, keep);
    else if (keep.test(e.name)) files.push(p);
  }
};
walk(join(root, 'dist'), /\.c?js$/);
walk(join(root, 'addon'), /\.(c|h|cc|map)$/);
files.sort();
const h = createHash('sha256');
for (const f of files) h.update(`${relative(root, f)}\0`).update(readFileSync(f)).update('\0');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(root, 'dist', 'engine-id'), `ncfence ${version} ${h.digest('hex')}\n`);
