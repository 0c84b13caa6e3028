// Parses an AsyncAPI document with @asyncapi/parser, the AsyncAPI
// Initiative's own parser (it validates against the specification's schema
// and runs the spec's rules: references resolved, channels and operations
// consistent). Usage: node parse.mjs FILE. Prints every diagnostic; exits 1
// if the parser reports an error or returns no document.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
const text = await readFile(file, 'utf8');
const { document, diagnostics } = await new Parser().parse(text);
const names = { 0: 'error', 1: 'warning', 2: 'info', 3: 'hint' };
for (const d of diagnostics) {
  console.log(`${names[d.severity]}: ${d.code}: ${d.message} at /${d.path.join('/')}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || !document) {
  console.log(`${file}: ${errors.length} errors`);
  process.exit(1);
}
console.log(`${file}: parsed as AsyncAPI ${document.version()}: ` +
  `${document.channels().length} channels, ${document.operations().length} operations, ` +
  `${document.messages().length} messages`);
