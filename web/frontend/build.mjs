// Builds web/static from GOV.UK Frontend: CSS with Arial/Helvetica (not GDS Transport, which
// is only for GOV.UK services), the JavaScript, and nothing with the crown or GOV.UK logo.
// Usage: npm ci && npm run build. The output is committed; the app never needs npm.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as sass from "sass";

const here = dirname(fileURLToPath(import.meta.url));
const staticDir = join(here, "..", "static");
const govuk = join(here, "node_modules", "govuk-frontend", "dist", "govuk");

mkdirSync(join(staticDir, "css"), { recursive: true });
mkdirSync(join(staticDir, "js"), { recursive: true });

const result = sass.compile(join(here, "src", "app.scss"), {
  style: "compressed",
  loadPaths: [join(here, "node_modules")],
  // GOV.UK Frontend 5 is written for @import; these notices are about that, not our code.
  silenceDeprecations: ["import", "global-builtin", "mixed-decls", "slash-div", "color-functions"],
  quietDeps: true,
});
writeFileSync(join(staticDir, "css", "app.css"), result.css + "\n");
copyFileSync(join(govuk, "govuk-frontend.min.js"), join(staticDir, "js", "govuk-frontend.min.js"));
console.log(`wrote ${result.css.length} bytes of CSS and GOV.UK Frontend's JavaScript`);
