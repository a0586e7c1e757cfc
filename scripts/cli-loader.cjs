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
const vm = require('node:vm');

const file = join(__dirname, 'ncfence.js');
let cachedData;
try {
  cachedData = readFileSync(`${file}.cache`);
} catch {
  cachedData = undefined; // no cache: compile as usual
}
// Module.wrap's wrapper, written out: node:module itself is not loaded.
const wrapped = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(file, 'utf8')}\n});`;
const script = new vm.Script(wrapped, {
  filename: file,
  cachedData,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
// The bundle runs with this module's require, which resolves from the same
// directory, and a module object of its own.
const bundle = { exports: {}, filename: file, id: file, loaded: false };
script.runInThisContext()(bundle.exports, require, bundle, file, __dirname);
bundle.loaded = true;
module.exports = { script };
