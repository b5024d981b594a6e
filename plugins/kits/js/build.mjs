// Builds the component with componentize-js's API. Not the `jco
// componentize` CLI: it fails here ("failed to get path metadata").
// `http` and `fetch-event` are disabled: with them the component imports
// wasi:http, which a ferrymail host does not provide, and it would not load.
import { rename, writeFile } from 'node:fs/promises';

// componentize-js 0.23 parses with oxc-parser and rolldown, whose native
// bindings exist for Node.js 20.19+ only: on Debian 12's Node 18 the import
// fails with "Failed to load native binding". Say what to do instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`componentize-js needs Node.js 20.19 or later; this is ${process.version}.`);
  console.error('Debian 12 ships 18: `npm install -g node@20` installs Node.js 20 from the npm registry into /usr/local.');
  process.exit(1);
}
const { componentize } = await import('@bytecodealliance/componentize-js');

const [source, out] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath: source,
  witPath: 'wit',
  worldName: 'plugin',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
console.log(`${out}: ${(component.length / 1e6).toFixed(1)} MB`);
