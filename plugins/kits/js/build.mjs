// Builds the component with componentize-js's API. Not the `jco
// componentize` CLI: it fails here ("failed to get path metadata").
// `http` and `fetch-event` are disabled: with them the component imports
// wasi:http, which a ferrymail host does not provide, and it would not load.
import { componentize } from '@bytecodealliance/componentize-js';
import { rename, writeFile } from 'node:fs/promises';

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
