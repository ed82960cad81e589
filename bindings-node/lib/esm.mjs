// Writes dist/index.mjs, the ES module entry point over the CommonJS build.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const names = Object.keys(createRequire(import.meta.url)("../dist/index.js")).filter((name) => name !== "default");
const body = `import entry from "./index.js";\nexport const { ${names.join(", ")} } = entry;\nexport default entry;\n`;
writeFileSync(new URL("../dist/index.mjs", import.meta.url), `// The ES module entry point.\n${body}`);
