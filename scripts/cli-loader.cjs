#!/usr/bin/env node
// The `ncfence` command (dist/cli/main.js): runs the bundled CLI,
// dist/cli/ncfence.js (scripts/bundle-cli.mjs), with the V8 code cache made
// for it when the package was built, when there is one and this node accepts
// it. Node 20 has no module compile cache (node:module enableCompileCache
// came in Node 22), so this does what it would: the bundle's functions are
// not parsed and compiled again at every run (issue 21).
//
// The cache is read, never written, here: it is part of the package, made by
// the package's own build and as trustworthy as the code beside it. V8
// checks that it belongs to this source and this V8 (version and flags) and
// ignores it otherwise (cachedDataRejected); then the bundle compiles as any
// script does. Copied into dist/ by scripts/bundle-cli.mjs; not edited there.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const Module = require('node:module');
const vm = require('node:vm');

const file = join(__dirname, 'ncfence.js');
let cachedData;
try {
  cachedData = readFileSync(`${file}.cache`);
} catch {
  cachedData = undefined; // no cache: compile as usual
}
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), {
  filename: file,
  cachedData,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
// The bundle runs as a CommonJS module of its own file, as `node ncfence.js` would run it.
const bundle = new Module(file, module);
bundle.filename = file;
bundle.paths = Module._nodeModulePaths(__dirname);
script.runInThisContext()(bundle.exports, Module.createRequire(file), bundle, file, __dirname);
bundle.loaded = true;
module.exports = { script };
