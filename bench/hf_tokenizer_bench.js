#!/usr/bin/env node
// hf_tokenizer_bench.js — the measurement of tokenizer_bench.c with Hugging Face `tokenizers` (its Rust core,
// through the napi binding @anush008/tokenizers), for machines without Python's `tokenizers` package.
// Usage: node hf_tokenizer_bench.js TOKENIZER_DIR_OR_FILE TEXT_FILE [TARGET_MB=20] [REPEATS=3]
// The binding is found through NODE_PATH (bench/tokenizer_bench.sh installs it into third_party/bench-node).
// Same text as the C bench (TEXT_FILE repeated, each copy preceded by "\n[copy N]\n"), one encode call without
// special tokens per document (or the whole text with "whole"), RAYON_NUM_THREADS=1: single-threaded. Wall time
// only (each call runs on a libuv worker and is awaited, so one at a time).
process.env.RAYON_NUM_THREADS = process.env.RAYON_NUM_THREADS || "1";
process.env.TOKENIZERS_PARALLELISM = "false";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("@anush008/tokenizers");

(async () => {
  let [file, textFile, mb = "20", reps = "3", mode = "docs"] = process.argv.slice(2);
  if (fs.statSync(file).isDirectory()) file = path.join(file, "tokenizer.json");
  const base = fs.readFileSync(textFile);
  const target = Math.floor(parseFloat(mb) * 1e6);
  const parts = [];
  let total = 0;
  for (let copy = 0; total < target; copy++) {
    const chunk = Buffer.concat([Buffer.from(`\n[copy ${copy}]\n`), base]);
    parts.push(chunk);
    total += chunk.length;
  }
  const raw = Buffer.concat(parts);
  const text = raw.toString("utf8");
  const docs = text.split(/(?<=\n\n)/); // the C bench's documents
  let t0 = process.hrtime.bigint();
  const tok = Tokenizer.fromFile(file);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  let best = Infinity, sum = 0, ntok = 0;
  for (let r = 0; r < parseInt(reps); r++) {
    t0 = process.hrtime.bigint();
    ntok = 0;
    if (mode === "whole") ntok = (await tok.encode(text, null, { addSpecialTokens: false })).getIds().length;
    else /* one call for all documents (per-document calls would time the binding's thread hops); with one rayon
          * thread the batch is encoded sequentially */
      for (const e of await tok.encodeBatch(docs, { addSpecialTokens: false })) ntok += e.getIds().length;
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, dt);
    sum += dt;
  }
  console.log(JSON.stringify({ impl: "hf_tokenizers (Rust core, node binding @anush008/tokenizers)", mode,
    mb_per_s: +(raw.length / 1e6 / best).toFixed(3), mb_per_s_mean: +(raw.length / 1e6 / (sum / reps)).toFixed(3),
    mb_per_s_cpu: +(raw.length / 1e6 / best).toFixed(3), tokens: ntok, bytes: raw.length, repeats: +reps,
    load_s: +loadS.toFixed(3) }));
})();
