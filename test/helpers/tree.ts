// A directory's content as a sorted map of relative path -> sha256 (files)
// or "-> target" (symlinks), to show that an uninstall restored it exactly.

import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

export function treeDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(relative(root, p), `-> ${readlinkSync(p)}`);
      else if (st.isDirectory()) walk(p);
      else out.set(relative(root, p), `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${(st.mode & 0o777).toString(8)}`);
    }
  };
  walk(root);
  return out;
}
