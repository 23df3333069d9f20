#!/usr/bin/env node
// Type-check Grafana dashboards (grafana/dashboards/*.json, or the files given as arguments)
// against Grafana's published dashboard schema, the `Dashboard` type of @grafana/schema,
// with the TypeScript compiler.
//
// Each dashboard becomes generated/<name>.ts:
//
//   import type { Dashboard } from '@grafana/schema';
//   export const dashboard: Json<Dashboard> = { ...the JSON as an object literal... };
//
// An object literal (not an imported .json module, whose strings TypeScript widens) keeps
// literal types and gets excess-property checks: an unknown property, a wrong type, a
// missing required property or a value outside an enumeration is a compile error.
// `Json<T>` is `Dashboard` as it looks in JSON: the schema's TypeScript enums (ThresholdsMode,
// FieldColorModeId, MappingType, ...) become the unions of their string values, because a
// JSON string can never be a TypeScript enum member. Nothing else is loosened.
//
// Usage: node grafana/check/check.mjs [dashboard.json ...]
// Exits 0 when every dashboard type-checks, 1 with tsc's messages (each followed by the
// JSON path it points at) when one does not, 2 when the check cannot run.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const DASHBOARDS = join(ROOT, 'grafana', 'dashboards');
const TSC = join(HERE, 'node_modules', 'typescript', 'bin', 'tsc');
const SCHEMA_PKG = join(HERE, 'node_modules', '@grafana', 'schema', 'package.json');

const HEADER = [
  "import type { Dashboard } from '@grafana/schema';",
  '',
  '// Dashboard as JSON spells it: enum members are their string values.',
  'type Json<T> = T extends string',
  '  ? `${T}`',
  '  : T extends number | boolean | null | undefined',
  '    ? T',
  '    : T extends ReadonlyArray<infer U>',
  '      ? Array<Json<U>>',
  '      : T extends object',
  '        ? { [K in keyof T]: Json<T[K]> }',
  '        : T;',
  '',
];

function fail(message, code = 2) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/** Pretty-print `value` as a TypeScript expression; paths[i] is the JSON path of line i. */
function serialize(value, prefix) {
  const lines = [];
  const paths = [];
  const push = (text, path) => {
    lines.push(text);
    paths.push(path);
  };
  const child = (path, key) =>
    typeof key === 'number'
      ? `${path}[${key}]`
      : /^[A-Za-z_$][\w$]*$/.test(key)
        ? `${path}${path ? '.' : ''}${key}`
        : `${path}[${JSON.stringify(key)}]`;
  const walk = (v, depth, path, head, tail) => {
    const pad = '  '.repeat(depth);
    if (Array.isArray(v) && v.length > 0) {
      push(`${pad}${head}[`, path);
      v.forEach((x, i) => walk(x, depth + 1, child(path, i), '', i < v.length - 1 ? ',' : ''));
      push(`${pad}]${tail}`, path);
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      push(`${pad}${head}{`, path);
      const keys = Object.keys(v);
      keys.forEach((k, i) =>
        walk(v[k], depth + 1, child(path, k), `${JSON.stringify(k)}: `, i < keys.length - 1 ? ',' : ''),
      );
      push(`${pad}}${tail}`, path);
    } else {
      push(`${pad}${head}${JSON.stringify(v)}${tail}`, path);
    }
  };
  walk(value, 0, '', prefix, ';');
  return { lines, paths };
}

/** "panels[3].gridPos" -> 'panels[3] ("Open incidents").gridPos' */
function describe(path, doc) {
  if (!path) return '(top level)';
  const m = /^panels\[(\d+)\](.*)$/.exec(path);
  const title = m && doc && Array.isArray(doc.panels) ? doc.panels[Number(m[1])]?.title : undefined;
  return typeof title === 'string' ? `panels[${m[1]}] (${JSON.stringify(title)})${m[2]}` : path;
}

// ------------------------------------------------------------------------------ inputs
if (!existsSync(TSC) || !existsSync(SCHEMA_PKG)) {
  fail(`grafana/check/node_modules is missing: run (cd grafana/check && npm ci) or deploy/local/bootstrap.sh`);
}
const schemaVersion = JSON.parse(readFileSync(SCHEMA_PKG, 'utf8')).version;

const args = process.argv.slice(2);
const files = args.length
  ? args.map((f) => resolve(process.cwd(), f))
  : readdirSync(DASHBOARDS)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => join(DASHBOARDS, f));
if (files.length === 0) fail(`no dashboards in ${relative(process.cwd(), DASHBOARDS) || DASHBOARDS}`, 1);

// Arguments get a directory of their own (with a tsconfig extending ours), so that a check of
// a scratch copy neither sees nor disturbs generated/<name>.ts of the repository's dashboards.
const generated = join(HERE, 'generated');
const outDir = args.length ? join(generated, `args-${process.pid}`) : generated;
mkdirSync(outDir, { recursive: true });
if (!args.length) {
  for (const f of readdirSync(generated)) if (f.endsWith('.ts')) rmSync(join(generated, f));
}

const problems = [];
const sources = new Map(); // generated file name -> { file, doc, paths, offset }
for (const file of files) {
  const shown = relative(ROOT, file).startsWith('..') ? file : relative(ROOT, file);
  let doc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`${shown}: not valid JSON: ${err.message}`);
    continue;
  }
  let name = basename(file, '.json').replace(/[^\w.-]/g, '_');
  while (sources.has(`${name}.ts`)) name += '_';
  const header = [`// Generated by grafana/check/check.mjs from ${shown}. Do not edit.`, ...HEADER];
  const { lines, paths } = serialize(doc, 'export const dashboard: Json<Dashboard> = ');
  writeFileSync(join(outDir, `${name}.ts`), `${[...header, ...lines].join('\n')}\n`);
  sources.set(`${name}.ts`, { shown, doc, paths, offset: header.length });
}

// ------------------------------------------------------------------------------ tsc
let project = HERE;
if (args.length) {
  writeFileSync(
    join(outDir, 'tsconfig.json'),
    JSON.stringify({ extends: '../../tsconfig.json', include: ['*.ts'] }, null, 2),
  );
  project = outDir;
}
let output = '';
let status = 0;
if (sources.size > 0) {
  const run = spawnSync(process.execPath, [TSC, '-p', project, '--pretty', 'false'], {
    cwd: HERE,
    encoding: 'utf8',
  });
  if (run.error) fail(`cannot run tsc: ${run.error.message}`);
  output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
  status = run.status ?? 1;
}
if (args.length) rmSync(outDir, { recursive: true, force: true });

// Point every message at the dashboard and JSON path it is about.
const explained = output
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => {
    const m = /^(.*?)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$/.exec(line);
    const source = m && sources.get(basename(m[1]));
    if (!source) return line;
    const path = source.paths[Number(m[2]) - 1 - source.offset];
    const where = path === undefined ? 'header' : describe(path, source.doc);
    const at = args.length ? '' : `\n    (${relative(ROOT, resolve(HERE, m[1]))}:${m[2]}:${m[3]})`;
    return `${source.shown}: ${where}: ${m[5]}: ${m[6]}${at}`;
  });

if (problems.length || status !== 0) {
  process.stderr.write(
    [
      `Grafana dashboard schema check failed (@grafana/schema ${schemaVersion}):`,
      ...problems,
      ...explained,
      ...(status !== 0 && explained.length === 0 ? [`tsc exited with ${status}`] : []),
    ].join('\n') + '\n',
  );
  process.exit(1);
}
process.stdout.write(
  `ok: ${sources.size} dashboard(s) type-check against Dashboard from @grafana/schema ${schemaVersion}\n`,
);
