// Validates Adaptive Cards with Microsoft's own parser (the `adaptivecards` package).
//
// Reads a JSON array of cards on stdin; prints a JSON array with one entry per card:
// {"index": N, "errors": ["..."]}. Exits 1 when any card has an error, 2 on bad input.
//
// A card is wrong when:
// - its `version` is not the target (TARGET below, what Teams renders through Workflows);
// - the parser, told to read it as that version, reports anything (an element type it does
//   not know in that version, a bad value...), or validation finds a problem (a missing
//   required property such as an Action.OpenUrl's url, duplicate ids...);
// - writing the parsed card back out loses something: a property the parser did not
//   understand is silently dropped, so a round trip shows what a host would ignore. Only
//   host-specific top-level properties (HOST_PROPERTIES) may be absent from the round trip.
"use strict";

const AC = require("adaptivecards/dist/adaptivecards.js");

const TARGET = "1.4";
const HOST_PROPERTIES = new Set(["$schema", "msteams"]);

function differences(original, roundTrip, path, out) {
  if (Array.isArray(original)) {
    if (!Array.isArray(roundTrip) || roundTrip.length !== original.length) {
      out.push(`${path}: not kept as written (the parser dropped or changed items)`);
      return;
    }
    original.forEach((item, i) => differences(item, roundTrip[i], `${path}[${i}]`, out));
    return;
  }
  if (original !== null && typeof original === "object") {
    if (roundTrip === null || typeof roundTrip !== "object") {
      out.push(`${path}: not understood by the parser`);
      return;
    }
    for (const key of Object.keys(original)) {
      if (path === "card" && HOST_PROPERTIES.has(key)) continue;
      differences(original[key], roundTrip[key], `${path}.${key}`, out);
    }
    return;
  }
  // The serializer writes some defaults back as other spellings (e.g. booleans); compare
  // loosely only for those, everything else must survive as written.
  if (roundTrip === undefined) {
    out.push(`${path}: dropped by the parser (unknown, or not in version ${TARGET})`);
  } else if (String(original) !== String(roundTrip)) {
    out.push(`${path}: read as ${JSON.stringify(roundTrip)}, written ${JSON.stringify(original)}`);
  }
}

function check(content) {
  const errors = [];
  if (content === null || typeof content !== "object" || content.type !== "AdaptiveCard") {
    return ["not an AdaptiveCard object"];
  }
  if (content.version !== TARGET) {
    errors.push(`version is ${JSON.stringify(content.version)}, expected "${TARGET}"`);
  }
  const version = AC.Version.parse(TARGET, new AC.SerializationContext());
  const context = new AC.SerializationContext(version);
  const card = new AC.AdaptiveCard();
  card.parse(content, context);
  for (let i = 0; i < context.eventCount; i++) {
    errors.push(`parse: ${context.getEventAt(i).message}`);
  }
  for (const event of card.validateProperties().validationEvents) {
    errors.push(`validate: ${event.message}`);
  }
  const written = card.toJSON(new AC.SerializationContext(version));
  differences(content, written, "card", errors);
  return errors;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  let cards;
  try {
    cards = JSON.parse(input);
  } catch (error) {
    process.stderr.write(`cardcheck: stdin is not JSON: ${error.message}\n`);
    process.exit(2);
  }
  if (!Array.isArray(cards)) {
    process.stderr.write("cardcheck: expected a JSON array of cards on stdin\n");
    process.exit(2);
  }
  const results = cards.map((card, index) => ({ index, errors: check(card) }));
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(results.some((r) => r.errors.length) ? 1 : 0);
});
