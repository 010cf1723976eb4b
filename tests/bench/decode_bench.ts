import { decodeEvent } from "../../src/decode/decode.ts";
import { encodedEvents } from "./_fixtures.ts";

const texts = encodedEvents(1000);
const bytes = texts.map((t) => new TextEncoder().encode(t));
let i = 0;

Deno.bench("decodeEvent(): bytes → validated event", { group: "decode", baseline: true }, () => {
  const r = decodeEvent(bytes[i++ % bytes.length], null);
  if (!r.ok) throw new Error(r.error);
});

Deno.bench("JSON.parse alone (the floor)", { group: "decode" }, () => {
  JSON.parse(texts[i++ % texts.length]!);
});
