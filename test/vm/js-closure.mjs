// node js-closure.mjs BUILD OUT ENTRY...: copies into OUT what the compiled modules ENTRY (paths
// under BUILD, e.g. js/node/cgroup-v2-guest.js) load: the modules they import, followed through
// relative imports, at their paths under BUILD (so the imports hold), and the npm packages
// imported by name with the packages those depend on, found as Node.js finds them (node_modules
// of the importer's directory or a parent), at their paths under the directory that holds that
// node_modules. For the cgroup v2 guest's initramfs (mkinitramfs.sh node).
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const [build, out, ...entries] = process.argv.slice(2);
const modules = new Set();
const packages = new Set();
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(])import\s*\(?\s*['"]([^'"]+)['"]/gm;

function visitModule(file) {
  if (modules.has(file)) return;
  modules.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('node:')) continue;
    if (spec.startsWith('.')) visitModule(join(dirname(file), spec));
    else visitPackage(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0], dirname(file));
  }
}

function visitPackage(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'node_modules', name);
    if (existsSync(join(pkg, 'package.json'))) {
      if (packages.has(pkg)) return;
      packages.add(pkg);
      const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
      for (const d of Object.keys(meta.dependencies ?? {})) visitPackage(d, pkg);
      return;
    }
    if (dir === dirname(dir)) throw new Error(`npm package ${name} (needed from ${from}) is not installed; run npm ci`);
  }
}

for (const e of entries) visitModule(join(build, e));
for (const f of modules) {
  mkdirSync(dirname(join(out, relative(build, f))), { recursive: true });
  cpSync(f, join(out, relative(build, f)));
}
// A package under the build directory's parent (the checkout) lands beside the modules' js/.
const top = dirname(build);
for (const p of packages) cpSync(p, join(out, relative(top, p)), { recursive: true, dereference: true });
process.stdout.write(`${String(modules.size)} modules, ${String(packages.size)} packages\n`);
