#!/usr/bin/env node
// Compiles contracts_fixtures/src/**/*.sol with solc-js (standard JSON, no downloads)
// and writes contracts_fixtures/artifacts/<ContractName>.json + manifest.json.
//
//   node contracts_fixtures/compile.mjs           compile and write artifacts
//   node contracts_fixtures/compile.mjs --check   exit 1 if manifest.json is stale (no compile)
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(HERE, 'src');
const OUT = path.join(HERE, 'artifacts');
const MANIFEST = path.join(OUT, 'manifest.json');

// Compiler settings recorded in the manifest (outputSelection is added at compile time).
const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
};

function listSources(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(full));
    else if (entry.isFile() && entry.name.endsWith('.sol')) out.push(full);
  }
  return out;
}

// Source unit name = path relative to contracts_fixtures/, with forward slashes ("src/aave/Pool.sol").
const unitName = (full) => path.relative(HERE, full).split(path.sep).join('/');

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
    return out;
  }
  return value;
}

const stableJson = (value) => JSON.stringify(sortKeys(value), null, 2) + '\n';

function sourceHashes() {
  const hashes = {};
  for (const full of listSources(SRC).sort()) hashes[unitName(full)] = sha256(fs.readFileSync(full));
  return sortKeys(hashes);
}

function check() {
  if (!fs.existsSync(MANIFEST)) {
    console.error(`manifest missing: ${path.relative(process.cwd(), MANIFEST)} (run node contracts_fixtures/compile.mjs)`);
    process.exit(1);
  }
  const manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8'));
  const old = manifest.sources || {};
  const now = sourceHashes();
  const changed = [];
  for (const k of new Set([...Object.keys(old), ...Object.keys(now)])) {
    if (old[k] !== now[k]) {
      changed.push(`${k} (${!(k in old) ? 'added' : !(k in now) ? 'removed' : 'modified'})`);
    }
  }
  if (changed.length) {
    console.error('contracts_fixtures artifacts are stale; changed sources:');
    for (const c of changed.sort()) console.error(`  ${c}`);
    console.error('re-run: node contracts_fixtures/compile.mjs');
    process.exit(1);
  }
  console.log(`artifacts up to date (${Object.keys(now).length} sources)`);
}

function compile() {
  const solc = require('solc');
  const files = listSources(SRC).sort();
  if (!files.length) {
    console.error('no sources under contracts_fixtures/src');
    process.exit(1);
  }
  const sources = {};
  for (const full of files) sources[unitName(full)] = { content: fs.readFileSync(full, 'utf8') };

  const input = {
    language: 'Solidity',
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        '*': { '': ['ast'], '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const findImports = (p) => {
    const full = path.join(HERE, p);
    if (full.startsWith(HERE + path.sep) && fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
    return { error: `import not found: ${p}` };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const w of (output.errors || []).filter((e) => e.severity !== 'error')) {
    if (process.env.SOLC_WARNINGS) console.error(w.formattedMessage);
  }
  if (errors.length) {
    for (const e of errors) console.error(e.formattedMessage || e.message);
    console.error(`compilation failed with ${errors.length} error(s)`);
    process.exit(1);
  }

  // Deployable = concrete contracts (not interfaces, libraries or abstract contracts).
  const deployable = new Set();
  for (const [src, out] of Object.entries(output.sources || {})) {
    for (const node of out.ast?.nodes || []) {
      if (node.nodeType === 'ContractDefinition' && node.contractKind === 'contract' && !node.abstract) {
        deployable.add(`${src}:${node.name}`);
      }
    }
  }

  const artifacts = {};
  for (const [src, contracts] of Object.entries(output.contracts || {})) {
    for (const [name, c] of Object.entries(contracts)) {
      if (!deployable.has(`${src}:${name}`)) continue;
      if (artifacts[name]) {
        console.error(`duplicate contract name ${name} in ${artifacts[name].sourceName} and ${src}`);
        process.exit(1);
      }
      artifacts[name] = {
        contractName: name,
        sourceName: src,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
      const size = c.evm.deployedBytecode.object.length / 2;
      if (size > 24576) console.error(`warning: ${name} runtime size ${size} > 24576 (EIP-170)`);
    }
  }

  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) if (f.endsWith('.json')) fs.unlinkSync(path.join(OUT, f));
  for (const name of Object.keys(artifacts).sort()) {
    fs.writeFileSync(path.join(OUT, `${name}.json`), stableJson(artifacts[name]));
  }
  const hashes = {};
  for (const full of files) hashes[unitName(full)] = sha256(fs.readFileSync(full));
  fs.writeFileSync(MANIFEST, stableJson({ solcVersion: solc.version(), settings: SETTINGS, sources: hashes }));
  console.log(`compiled ${files.length} sources -> ${Object.keys(artifacts).length} artifacts in ${path.relative(process.cwd(), OUT) || OUT}`);
}

if (process.argv.includes('--check')) check();
else compile();
