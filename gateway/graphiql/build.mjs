// Builds dist/ from node_modules (see build.sh): the page's script and
// style sheet, Monaco's three workers, the codicon font, their gzip
// variants, the licenses of everything bundled, and manifest.json, which
// the gateway's tests hold the committed files to.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const modules = join(here, 'node_modules');

// What GraphiQL imports, replaced by leaner equivalents (see src/).
const replaced = {
  'monaco-editor/esm/vs/editor/edcore.main.js': join(here, 'src/monaco.js'),
  'prettier/parser-babel': join(here, 'src/jsonc-format.js'),
  'prettier/plugins/estree': join(here, 'src/jsonc-format.js'),
  // The same plugin as `prettier/plugins/graphql`, once more in UMD form.
  'prettier/parser-graphql': join(modules, 'prettier/plugins/graphql.mjs'),
};
const replace = {
  name: 'replace',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(replaced).map((k) => k.replace(/[./]/g, '\\$&')).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: replaced[args.path] }));
  },
};

const common = {
  bundle: true,
  minify: true,
  format: 'iife',
  charset: 'utf8',
  legalComments: 'none',
  banner: { js: '/*! Licenses: THIRD-PARTY-LICENSES.txt */', css: '/*! Licenses: THIRD-PARTY-LICENSES.txt */' },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  metafile: true,
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
const page = await esbuild.build({
  ...common,
  entryPoints: { graphiql: join(here, 'src/main.js') },
  outdir: dist,
  loader: { '.ttf': 'file' },
  assetNames: '[name]',
  plugins: [replace],
});
const workers = await esbuild.build({
  ...common,
  entryPoints: {
    'editor.worker': join(modules, 'monaco-editor/esm/vs/editor/editor.worker.js'),
    'json.worker': join(modules, 'monaco-editor/esm/vs/language/json/json.worker.js'),
    'graphql.worker': join(modules, 'monaco-graphql/esm/graphql.worker.js'),
  },
  outdir: dist,
});

// Every npm package with code in the bundle, with its license text.
// A few MIT packages ship no license file: each takes the one of a package
// from its own repository (the GraphiQL plugins: graphql/graphiql;
// react-compiler-runtime: facebook/react) or by its author (Anton Korzunov).
const licenseOf = {
  '@graphiql/plugin-doc-explorer': 'graphiql',
  '@graphiql/plugin-history': 'graphiql',
  'react-compiler-runtime': 'react',
  'react-remove-scroll-bar': 'react-remove-scroll',
};
const packages = new Map();
for (const { metafile } of [page, workers]) {
  for (const input of Object.keys(metafile.inputs)) {
    const at = input.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const parts = input.slice(at + 'node_modules/'.length).split('/');
    const name = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    if (packages.has(name)) continue;
    const root = join(modules, name);
    const meta = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const licensed = join(modules, licenseOf[name] ?? name);
    const file = readdirSync(licensed).find((f) => /^(licen[cs]e|copying)([-.][a-z-]+)?(\.(md|txt))?$/i.test(f));
    if (!file) throw new Error(`${name} ships no license file: add it to licenseOf`);
    const text = readFileSync(join(licensed, file), 'utf8').trim();
    packages.set(name, { version: meta.version, license: meta.license, text });
  }
}
const names = [...packages.keys()].sort();
writeFileSync(
  join(dist, 'THIRD-PARTY-LICENSES.txt'),
  `The gateway's GraphiQL bundle contains these npm packages.\n\n${names
    .map((n) => {
      const p = packages.get(n);
      return `${'='.repeat(72)}\n${n} ${p.version} (${p.license})\n${'='.repeat(72)}\n${p.text}\n`;
    })
    .join('\n')}`,
);

// Each file's gzip variant (served to browsers that accept it), and the
// manifest of every file.
const files = readdirSync(dist).sort();
const manifest = { note: 'Written by build.sh; the gateway tests check dist/ against it.', packages: {}, files: {} };
for (const n of names) manifest.packages[n] = packages.get(n).version;
for (const name of files) {
  const body = readFileSync(join(dist, name));
  const gzip = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(dist, `${name}.gz`), gzip);
  const sha384 = createHash('sha384').update(body).digest('base64');
  manifest.files[name] = { bytes: body.length, gzip: gzip.length, sha384 };
}
writeFileSync(join(dist, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
for (const name of files) {
  const { bytes, gzip } = manifest.files[name];
  console.log(`${name.padEnd(26)} ${String(bytes).padStart(9)} bytes, gzip ${String(gzip).padStart(8)}`);
}
