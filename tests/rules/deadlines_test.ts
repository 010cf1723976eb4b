import assert from "node:assert/strict";
import fc from "fast-check";
import { type Deadline, DeadlineQueue } from "../../src/rules/deadlines.ts";
import { checkProperty } from "../helpers/property.ts";

type Item = Deadline & { id: number };

Deno.test("DeadlineQueue gives its items back earliest first, through moves, deletions and resets", () => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("set" as const),
      id: fc.integer({ min: 0, max: 19 }),
      due: fc.integer({ min: 0, max: 50 }),
    }),
    // No earlier than every due queued: the run's O(1) path (a deadman timer moved by its sensor's event).
    fc.record({
      kind: fc.constant("later" as const),
      id: fc.integer({ min: 0, max: 19 }),
      by: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({ kind: fc.constant("delete" as const), id: fc.integer({ min: 0, max: 19 }) }),
    fc.record({ kind: fc.constant("pop" as const) }),
    fc.record({ kind: fc.constant("reset" as const), ids: fc.uniqueArray(fc.integer({ min: 0, max: 19 })) }),
  );
  checkProperty(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
    const items: Item[] = Array.from({ length: 20 }, (_, id) => ({ id, due: 0, slot: -1 }));
    // Every item's due is checked after each step too: the queue moves items between its two parts.
    const q = new DeadlineQueue<Item>();
    const model = new Map<number, number>();
    for (const o of ops) {
      if (o.kind === "set") {
        q.set(items[o.id]!, o.due);
        model.set(o.id, o.due);
      } else if (o.kind === "later") {
        const due = Math.max(0, ...model.values()) + o.by;
        q.set(items[o.id]!, due);
        model.set(o.id, due);
      } else if (o.kind === "delete") {
        q.delete(items[o.id]!);
        model.delete(o.id);
      } else if (o.kind === "pop") {
        const top = q.pop();
        const least = Math.min(...model.values());
        assert.equal(top?.due, model.size === 0 ? undefined : least);
        if (top !== undefined) model.delete(top.id);
      } else {
        model.clear();
        for (const id of o.ids) model.set(id, items[id]!.due = id % 7);
        q.reset(o.ids.map((id) => items[id]!));
      }
      assert.equal(q.size, model.size);
      for (const [id, due] of model) assert.equal(items[id]!.due, due);
      assert.equal(q.peek()?.due, model.size === 0 ? undefined : Math.min(...model.values()));
      for (const item of items) assert.equal(q.has(item), model.has(item.id));
    }
    const drained: number[] = [];
    for (let top = q.pop(); top !== undefined; top = q.pop()) drained.push(top.due);
    assert.deepEqual(drained, [...model.values()].sort((a, b) => a - b));
  }));
});
