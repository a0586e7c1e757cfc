// Bundles the ncfence command into one CommonJS file, dist/cli/ncfence.js,
// run by `npm run build` and `prepare` after tsc; puts the command's loader
// (scripts/cli-loader.cjs) at dist/cli/main.js; and makes the V8 code cache
// the loader uses, dist/cli/ncfence.js.cache, by running one build.
//
// Why: `ncfence build` is what a user waits for at every install and every
// stale start-up, and the CLI as tsc leaves it (ES modules, one file per
// source) spent a fifth of a build's time loading itself: Node's ES module
// loader, a facade per imported builtin (importing node:fs that way loads
// fs/promises, readline and streams; node:crypto, webcrypto) and twenty-odd
// files resolved and linked one by one. One CommonJS file loads as the
// crypto floor process does (issue 21; bench/README.md, "ncfence bench").
//
// What it does to the sources, nothing else:
// - every `import.meta.url` becomes the URL its file has in tsc's output
//   (dist/<path>.js), so paths such as ../rules/ and ../../build/Release/
//   mean what they meant;
// - `createRequire(import.meta.url)` becomes the bundle's own require: what
//   the sources load that way are absolute paths and packages, which resolve
//   the same from dist/cli/, and node:module (with the ES module loader
//   behind it) is not loaded;
// - packages stay outside (resolved from node_modules at run time), except
//   pkijs, which is an ES module only: it is bundled on its own into
//   dist/cli/vendor/pkijs.cjs, loaded by the commands that compare root
//   programs and never by `build`.
// Commands reached through dynamic import() stay lazy: esbuild evaluates a
// module's body when it is first imported, as Node did.
//
// The code cache: V8 keeps the bytecode of every function a run compiled;
// made after `ncfence build` of the system's trust module (into a
// temporary directory, removed), it holds what a build needs. Without that
// module (another system), after `ncfence --help`. A cache V8 refuses (another
// node) costs nothing but the compile it would have saved.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const outfile = join(dist, 'cli', 'ncfence.js');
const loader = join(dist, 'cli', 'main.js');
const cache = `${outfile}.cache`;
const SYSTEM_CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
const vendor = join(dist, 'cli', 'vendor', 'pkijs.cjs');

/** Each source's import.meta.url as the URL of its tsc output, relative to the bundle. */
const sourcePaths = {
  name: 'ncfence-source-paths',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8').replaceAll('createRequire(import.meta.url)', 'require');
      const rel = relative(dirname(outfile), join(dist, relative(src, args.path)).replace(/\.ts$/, '.js'));
      return { contents: text.replaceAll('import.meta.url', `__ncfenceFileUrl(${JSON.stringify(rel)})`), loader: 'ts' };
    });
    build.onResolve({ filter: /^pkijs$/ }, () => ({ path: './vendor/pkijs.cjs', external: true }));
  },
};

function noWarnings(result) {
  const warnings = result.warnings ?? [];
  if (warnings.length > 0) {
    process.stderr.write(esbuild.formatMessagesSync(warnings, { kind: 'warning' }).join('\n'));
    process.exit(1);
  }
}

/** What both bundles are: one CommonJS file for Node 20; warnings are reported by noWarnings. */
const commonJs = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'silent' };
mkdirSync(dirname(vendor), { recursive: true });
noWarnings(
  await esbuild.build({
    ...commonJs,
    stdin: { contents: "export * from 'pkijs';", resolveDir: root, loader: 'js' },
    outfile: vendor,
  }),
);
noWarnings(
  await esbuild.build({
    ...commonJs,
    entryPoints: [join(src, 'cli', 'main.ts')],
    outfile,
    packages: 'external',
    plugins: [sourcePaths],
    // "use strict" first: a banner before esbuild's own directive would leave the file sloppy.
    banner: { js: '"use strict";\nconst __ncfenceFileUrl = (rel) => require("node:url").pathToFileURL(require("node:path").join(__dirname, rel)).href;' },
  }),
);
// The loader runs the bundle as a script of its own: no hashbang, and no
// dynamic import() left (it would need the ES module loader).
const code = readFileSync(outfile, 'utf8').replace(/^#!.*\n/, '');
if (/[^.\w$]import\(/.test(code)) throw new Error(`${outfile} still has a dynamic import(); import it statically`);
writeFileSync(outfile, code);
// dist/ is ES modules (package.json "type"); this directory holds CommonJS.
writeFileSync(join(dist, 'cli', 'package.json'), '{ "type": "commonjs" }\n');
copyFileSync(join(root, 'scripts', 'cli-loader.cjs'), loader);

// The code cache, from one run through the loader (which hands back its script).
// A run that fails leaves no cache (the command works without one).
if (existsSync(cache)) unlinkSync(cache);
const scratch = mkdtempSync(join(tmpdir(), 'ncfence-code-cache-'));
try {
  const runs = [['--help']];
  if (existsSync(SYSTEM_CKBI)) runs.unshift(['build', '--upstream', SYSTEM_CKBI, '--out', join(scratch, 'out'), '--allow-empty']);
  for (const args of runs) {
    const warm = `process.argv = [process.execPath, ${JSON.stringify(loader)}, ...${JSON.stringify(args)}];
const { script } = require(${JSON.stringify(loader)});
process.on('exit', (code) => { if (code === 0) require('node:fs').writeFileSync(${JSON.stringify(join(scratch, 'cache'))}, script.createCachedData()); });`;
    try {
      execFileSync(process.execPath, ['-e', warm], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NCFENCE_CONFIG: '' } });
    } catch (e) {
      process.stderr.write(`scripts/bundle-cli.mjs: ncfence ${args[0]} failed while making the code cache (${String(e.stderr ?? e.message).trim()}); trying without it\n`);
      continue;
    }
    if (existsSync(join(scratch, 'cache'))) {
      renameSync(join(scratch, 'cache'), cache);
      break;
    }
  }
  if (!existsSync(cache)) process.stderr.write('scripts/bundle-cli.mjs: no code cache made; the command compiles its bundle at every run\n');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
