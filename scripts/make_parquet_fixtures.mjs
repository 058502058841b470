// Generates the Parquet reader test fixtures in tests/fixtures/parquet/ using
// OUTSIDE Parquet implementations (arrow-rs via parquet-wasm, hyparquet-writer, @dsnp/parquetjs,
// and the old arrow-rs 12.0.0 bundled in parquet-wasm 0.3.1), together with the expected rows
// as JSONL and a README.md describing every file.
//
// How to run (node >= 20; packages are resolved from the CURRENT directory's node_modules):
//
//   mkdir -p /tmp/pqgen && cd /tmp/pqgen && npm init -y >/dev/null && \
//   npm install parquet-wasm@0.8.0 apache-arrow@21.2.0 hyparquet-writer@0.17.0 hyparquet@1.33.0 hyparquet-compressors@1.1.2 \
//     @dsnp/parquetjs@1.8.9 parquet-wasm-arrowrs12@npm:parquet-wasm@0.3.1 && \
//   node /work/main/scripts/make_parquet_fixtures.mjs /work/main/tests/fixtures/parquet
//
// (hyparquet-compressors is only used to READ BACK gzip/brotli/zstd/lz4 files with
// hyparquet for verification; it writes nothing. @dsnp/parquetjs 1.9.3 is published without
// its dist/ folder, hence 1.8.9. parquet-wasm-arrowrs12 is an npm alias of parquet-wasm 0.3.1,
// whose arrow-rs 12.0.0 writer still splits data pages in the middle of a row.)
//
// The helpers shared with make_arrow_fixtures.mjs (package loading, the schema language, Arrow
// type/batch construction, validate, the read-back comparison) are in ./fixture_common.mjs,
// next to this script; it is imported relative to the script and resolves packages from the
// current directory too, so the command above is all it takes.
//
// Inputs (relative to this script): ../configs/data/text_pairs.jsonl (first 16 lines)
// and ../configs/data/tiny_pairs.jsonl (first 24 lines).
//
// Every expected JSONL row is produced from the JS data built here (never from reading a
// file back). Every written file is then read back with TWO readers -- hyparquet
// (parquetReadObjects) and parquet-wasm readParquet -> apache-arrow tableFromIPC -- and
// compared strictly with the expected rows; any difference aborts with exit code 1.
// The output is deterministic: running it twice gives byte-identical files.
//
// Second mode, for timing checks only (its output is NOT a fixture and is not committed):
//
//   node /work/main/scripts/make_parquet_fixtures.mjs --uf-big /tmp/pqbig [ROWS=60000]
//
// writes DIR/uf-big.parquet (UltraFeedback-binarized schema as uf.parquet, ROWS rows of
// seeded pseudo-random text: prompt ~300 chars, responses ~1500 chars; parquet-wasm, SNAPPY,
// dictionary enabled, default page sizes, one row group) and DIR/uf-big.jsonl (same rows),
// then reads the parquet file back with hyparquet and compares every row.

import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import {
  req, load, pkgVersion, arrow, utf8, i32, i64, f64, list, struct, msgT, kvmap, TYPES_SCHEMA, UF_SCHEMA,
  arrowSchema, makeBatch, toWriterValue, validate, bigToNum, normArrow, sameJson,
} from './fixture_common.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const outDir = path.resolve(process.argv[2] ?? path.join(here, '../tests/fixtures/parquet'))
const dataDir = path.join(here, '../configs/data')

// ---------------------------------------------------------------- package loading
// (req, load, pkgVersion and apache-arrow itself come from fixture_common.mjs)
const pw = await load('parquet-wasm')
const hyp = await load('hyparquet')
const { parquetHeader } = await load('hyparquet/src/column.js')
const { decompressPage } = await load('hyparquet/src/datapage.js')
const hyw = await load('hyparquet-writer')
const { compressors: hyCompressors } = await load('hyparquet-compressors')
const pj = req('@dsnp/parquetjs') // CommonJS
const pw12 = req('parquet-wasm-arrowrs12/node/arrow1.js') // CommonJS build of parquet-wasm 0.3.1 (arrow-rs 12.0.0)
// hyparquet-compressors 1.1.2 rejects the valid 1-byte LZ4 block [0x00] that encodes an EMPTY
// payload (arrow-rs writes one for the 0-value dictionary page of an all-null column chunk);
// handle that case here and delegate everything else.
const compressors = {
  ...hyCompressors,
  LZ4_RAW: (input, outputLength) => outputLength === 0 && input.length === 1 && input[0] === 0
    ? new Uint8Array(0) : hyCompressors.LZ4_RAW(input, outputLength),
}
const V = Object.fromEntries(['parquet-wasm', 'apache-arrow', 'hyparquet', 'hyparquet-writer', 'hyparquet-compressors', '@dsnp/parquetjs']
  .map(n => [n, pkgVersion(n).replace(/^v(?=\d)/, '')])) // @dsnp/parquetjs 1.8.9 declares "v1.8.9"
{ // npm alias: the package.json inside is parquet-wasm's own
  const j = JSON.parse(fs.readFileSync(req.resolve('parquet-wasm-arrowrs12/package.json'), 'utf8'))
  if (j.name !== 'parquet-wasm') throw new Error('parquet-wasm-arrowrs12 must be an alias of parquet-wasm')
  V['parquet-wasm-arrowrs12'] = j.version
}
console.log('package versions:', V)

// ---------------------------------------------------------------- type descriptors
// The schema language (utf8() ... kvmap(), TYPES_SCHEMA, UF_SCHEMA), the Arrow types and record
// batches built from it (list child field 'item' unless given), toWriterValue, validate,
// normArrow and sameJson are in fixture_common.mjs (shared with make_arrow_fixtures.mjs); the
// hyparquet parts are here.

// hyparquet-writer schema elements (depth first), standard 3-level LIST: <name>/list/element
function hySchema(name, d) {
  const repetition_type = d.nullable ? 'OPTIONAL' : 'REQUIRED'
  switch (d.t) {
    case 'utf8': return [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' }, repetition_type }]
    case 'i32': return [{ name, type: 'INT32', repetition_type }]
    case 'i64': return [{ name, type: 'INT64', repetition_type }]
    case 'f64': return [{ name, type: 'DOUBLE', repetition_type }]
    case 'f32': return [{ name, type: 'FLOAT', repetition_type }]
    case 'bool': return [{ name, type: 'BOOLEAN', repetition_type }]
    case 'list': return [
      { name, repetition_type, converted_type: 'LIST', logical_type: { type: 'LIST' }, num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...hySchema('element', d.of),
    ]
    case 'struct': return [
      { name, repetition_type, num_children: d.fields.length },
      ...d.fields.flatMap(([n, fd]) => hySchema(n, fd)),
    ]
  }
  throw new Error(d.t)
}

// hyparquet value -> canonical JSON value (normArrow, in fixture_common.mjs, is the apache-arrow one)
function normHy(v, d) {
  if (v === null || v === undefined) return null
  switch (d.t) {
    case 'i64': return bigToNum(v)
    case 'list': return Array.from(v, x => normHy(x, d.of))
    case 'struct': return Object.fromEntries(d.fields.map(([n, fd]) => [n, normHy(v[n], fd)]))
    case 'kvmap': return { key_value: Object.entries(v).map(([k, x]) => ({ key: normHy(k, d.key), value: normHy(x, d.value) })) } // hyparquet: plain object
    default: return v
  }
}

// ---------------------------------------------------------------- the `types` table
// TYPES_SCHEMA is in fixture_common.mjs
const NONASCII = 'héllo – 漢字 🙂'
const LONG = 'long string ' + 'abcdefghij'.repeat(11) + ' ' + NONASCII // > 128 bytes: forces page splits
function typesRows(n = 40) {
  const sPool = ['alpha', '', NONASCII, 'beta', 'alpha', 'tab\there, newline\nthere, "quotes" and back\\slash', LONG, 'beta', 'γειά σου', 'alpha']
  const i32Pool = [0, -1, 2147483647, -2147483648, 42, -123456, 7, 65536]
  const i64Pool = [0, -1, 4294967296, -3000000000, 9007199254740991, -9007199254740991, 2147483648, 123456789012345, 17]
  const f64Pool = [0.1, -1e300, 1.5, 5e-324, 1.7976931348623157e308, -0.000123, 123456789.125, 0, 2.5e-8, -7, 1e21, 3.141592653589793]
  const f32Pool = [0.5, -2.25, 1.5, 3.4028234663852886e38, 1.401298464324817e-45, 16777216, -0.09375, 0, 1.1754943508222875e-38, 100.25]
  const liPool = [[1, 2, 3], [], null, [null], [4, null, -5], [2147483647, -2147483648], 'R']
  const lsPool = [['a', ''], [], null, [null, NONASCII], ['x'], ['dup', 'dup', 'dup'], [LONG, null, '']]
  const stPool = [{ a: 1, b: 'one' }, null, { a: null, b: 'b only' }, { a: -7, b: null }, { a: null, b: null }, { a: 2147483647, b: NONASCII }]
  const msgsPool = [
    [{ content: 'Hi', role: 'user' }, { content: 'Hello! 🙂', role: 'assistant' }],
    [],
    null,
    [{ content: '', role: 'system' }],
    [null, { content: null, role: 'user' }],
    'R',
    [{ content: 'You are helpful.', role: 'system' }, { content: NONASCII, role: 'user' }, { content: LONG, role: 'assistant' }],
  ]
  const llPool = [[[1, 2], [3]], [], null, [[]], [null], [[4294967296, null], null, []], [[-9007199254740991, 9007199254740991]], 'R']
  const rows = []
  for (let r = 0; r < n; r++) {
    const pick = (pool, k) => pool[(r * k + Math.floor(r / pool.length)) % pool.length]
    let li = pick(liPool, 1); if (li === 'R') li = [r, -r]
    let msgs = pick(msgsPool, 1); if (msgs === 'R') msgs = [{ content: `question ${r}`, role: 'user' }, { content: `answer ${r}`, role: 'assistant' }]
    let ll = pick(llPool, 3); if (ll === 'R') ll = [[r * 1000000007], [-r, 0]]
    rows.push({
      s: r >= 28 && r <= 34 ? null : r % 11 === 5 ? null : r % 13 === 12 ? `unique-${r}` : pick(sPool, 1),
      i32: r >= 14 && r <= 20 ? null : r % 9 === 4 ? null : pick(i32Pool, 3),
      i64: r % 7 === 3 ? null : pick(i64Pool, 2),
      f64: r % 10 === 6 ? null : pick(f64Pool, 5),
      f32: r % 8 === 2 ? null : pick(f32Pool, 3),
      b: r % 11 === 4 ? null : r % 3 === 0 || r % 5 === 1,
      li, ls: pick(lsPool, 2), st: pick(stPool, 1), msgs, ll,
      req: r,
    })
  }
  return rows
}

// `dictfallback` table: ~300 distinct ~60-byte strings + int64
const FALLBACK_SCHEMA = [['t', utf8()], ['n', i64()]]
function fallbackRows() {
  const rows = []
  for (let i = 0; i < 300; i++) {
    // exactly 60 ASCII bytes, all distinct (compressible, to keep the file small)
    const t = `row ${String(i).padStart(3, '0')} | the quick brown fox jumps over the lazy dog ${i % 10}`.padEnd(60, '.')
    if (t.length !== 60) throw new Error('dictfallback string length')
    rows.push({ t, n: i * 1000003 - 150000000 })
  }
  return rows
}

// `uf` table: UltraFeedback-binarized shape from configs/data/text_pairs.jsonl
// (UF_SCHEMA is in fixture_common.mjs)
let ufStringLines = []
function ufRows() {
  const lines = fs.readFileSync(path.join(dataDir, 'text_pairs.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 16)
  ufStringLines = []
  return lines.map((line, i) => {
    const j = JSON.parse(line)
    const conv = side => {
      if (typeof side === 'string') { // plain-string completion: make it the HF 2-message form
        ufStringLines.push(i + 1)
        return [{ content: j.prompt, role: 'user' }, { content: side, role: 'assistant' }]
      }
      return side.map(m => ({ content: m.content, role: m.role }))
    }
    const chosen = conv(j.chosen), rejected = conv(j.rejected)
    const score_chosen = 6 + (i % 5) * 0.75
    return {
      prompt: j.prompt,
      prompt_id: createHash('sha256').update(j.prompt, 'utf8').digest('hex'),
      chosen, rejected, messages: chosen.map(m => ({ ...m })),
      score_chosen, score_rejected: score_chosen - 2.5 - (i % 3) * 0.5,
    }
  })
}

// `ids` table: pre-tokenized pairs from configs/data/tiny_pairs.jsonl
const IDS_SCHEMA = [
  ['prompt_ids', list(i32())], ['chosen_ids', list(i32())], ['rejected_ids', list(i32())],
  ['ref_chosen_logp', f64()], ['ref_rejected_logp', f64()],
]
function idsRows() {
  const lines = fs.readFileSync(path.join(dataDir, 'tiny_pairs.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 24)
  return lines.map(line => {
    const j = JSON.parse(line)
    return {
      prompt_ids: j.prompt_ids, chosen_ids: j.chosen_ids, rejected_ids: j.rejected_ids,
      ref_chosen_logp: -j.chosen_ids.length * 1.25, ref_rejected_logp: -j.rejected_ids.length * 1.5,
    }
  })
}

// `prompts` table
const PROMPTS_SCHEMA = [['prompt', utf8()], ['messages', list(msgT())]]
function promptsRows() {
  return [
    { prompt: 'What is 2 + 2?', messages: [{ content: 'What is 2 + 2?', role: 'user' }] },
    { prompt: 'Name a prime number.', messages: null },
    { prompt: 'Say hello in Japanese.', messages: [{ content: 'You are a translator.', role: 'system' }, { content: 'Say hello in Japanese.', role: 'user' }] },
    { prompt: 'Dites bonjour – en français 🙂', messages: null },
    { prompt: 'Count to three.', messages: [{ content: 'Count to three.', role: 'user' }, { content: '1, 2, 3', role: 'assistant' }, { content: 'Again?', role: 'user' }] },
  ]
}

// `legacy` table (legacy-lists.parquet): list/map/struct shapes that neither arrow-rs nor
// hyparquet-writer can write. The descriptors give the JSON shape the C reader produces:
//   a  optional group a (LIST) { repeated int32 a_elem; }                        -> [int] (2-level: the repeated field is the element)
//   b  optional group b (LIST) { repeated group b_item { optional x; optional y } } -> [{x, y}]
//   c  optional group c (LIST) { repeated group array { optional s } }              -> [{s}] (repeated group named "array" = element)
//   d  optional group d (LIST) { repeated group d_tuple { optional int64 v } }     -> [{v}] (repeated group named "<name>_tuple" = element)
//   e  required group e (LIST) { repeated group list { required element } }       -> [string] (never null)
//   r  repeated int64 r (no annotation)                                              -> [int] (never null; [] when the row has none)
//   m  optional group m (MAP) { repeated group key_value { required key; optional value } } -> {"key_value": [{key, value}]}
//   st required group st { required int32 id; optional group inner { optional name } } -> {id, inner: null | {name}}
const LEGACY_SCHEMA = [
  ['a', list(i32(false))],
  ['b', list(struct([['x', utf8()], ['y', i32()]], false))],
  ['c', list(struct([['s', utf8()]], false))],
  ['d', list(struct([['v', i64()]], false))],
  ['e', list(utf8(false), false)],
  ['r', list(i64(false), false)],
  ['m', kvmap(utf8(false), i32())],
  ['st', struct([['id', i32(false)], ['inner', struct([['name', utf8()]])]], false)],
]
function legacyRows() {
  const aPool = [[1, 2, 3], [], null, [-2147483648, 2147483647], [42], [0, 0, 0, 0, 0, 0, 0, 0, 0, 7]]
  const bPool = [[{ x: 'p', y: 1 }, { x: null, y: 2 }], [], null, [{ x: null, y: null }], [{ x: NONASCII, y: -5 }, { x: '', y: null }, { x: 'q', y: 2147483647 }]]
  const cPool = [[{ s: 'a' }, { s: null }], [], null, [{ s: '' }], [{ s: 'tab\there, "quotes" and back\\slash' }, { s: 'b' }, { s: 'c' }]]
  const dPool = [[{ v: 1 }], [{ v: null }, { v: 9007199254740991 }], [], null, [{ v: -4294967296 }, { v: 0 }, { v: -9007199254740991 }]]
  const ePool = [['x', 'y'], [], ['', NONASCII], ['only'], ['dup', 'dup', 'dup']]
  const rPool = [[1, 2], [], [-9007199254740991], [4294967296, 0, -1], [], [7]]
  const mPool = [{ key_value: [{ key: 'k1', value: 1 }, { key: 'k2', value: null }] }, { key_value: [] }, null,
    { key_value: [{ key: NONASCII, value: -7 }] }, { key_value: [{ key: '', value: 0 }, { key: 'z', value: 2147483647 }, { key: 'y', value: -2147483648 }] }]
  const innerPool = [null, { name: null }, { name: 'n' }, { name: NONASCII }]
  const rows = []
  for (let r = 0; r < 12; r++) {
    const pick = (pool, k) => structuredClone(pool[(r * k + Math.floor(r / pool.length)) % pool.length])
    const last = r >= 10 // rows 10..11 = the third row group (row groups of 5): a, b and m all null there
    rows.push({
      a: last ? null : pick(aPool, 1), b: last ? null : pick(bPool, 2), c: pick(cPool, 3), d: pick(dPool, 1),
      e: pick(ePool, 2), r: pick(rPool, 1), m: last ? null : pick(mPool, 3), st: { id: r * 10 - 30, inner: pick(innerPool, 1) },
    })
  }
  return rows
}
// the @dsnp/parquetjs schema declaring exactly the shapes above (parquetjs writes converted types only)
function legacyPjSchema(compression) {
  const leaf = (type, extra = {}) => ({ type, compression, ...extra })
  return {
    a: { type: 'LIST', optional: true, fields: { a_elem: leaf('INT32', { repeated: true }) } },
    b: { type: 'LIST', optional: true, fields: { b_item: { repeated: true, fields: { x: leaf('UTF8', { optional: true }), y: leaf('INT32', { optional: true }) } } } },
    c: { type: 'LIST', optional: true, fields: { array: { repeated: true, fields: { s: leaf('UTF8', { optional: true }) } } } },
    d: { type: 'LIST', optional: true, fields: { d_tuple: { repeated: true, fields: { v: leaf('INT64', { optional: true }) } } } },
    e: { type: 'LIST', fields: { list: { repeated: true, fields: { element: leaf('UTF8') } } } },
    r: leaf('INT64', { repeated: true }),
    m: { type: 'MAP', optional: true, fields: { key_value: { repeated: true, fields: { key: leaf('UTF8'), value: leaf('INT32', { optional: true }) } } } },
    st: { fields: { id: leaf('INT32'), inner: { optional: true, fields: { name: leaf('UTF8', { optional: true }) } } } },
  }
}
// expected row -> the nested record parquetjs shreds (a repeated field is a JS array; a group is an object)
function legacyToPj(row) {
  const big = v => v === null ? null : BigInt(v)
  return {
    a: row.a && { a_elem: row.a },
    b: row.b && { b_item: row.b },
    c: row.c && { array: row.c },
    d: row.d && { d_tuple: row.d.map(t => ({ v: big(t.v) })) },
    e: { list: row.e.map(element => ({ element })) },
    r: row.r.map(BigInt),
    m: row.m,
    st: row.st,
  }
}
// hyparquet's own rendering of the legacy shapes, mapped to the C reader's JSON before comparing:
// it returns b as {b_item: [...]} (a LIST whose repeated group has 2 fields is not list-like to it),
// c and d as arrays of the bare leaf values (it unwraps a 1-field repeated group), m as a plain object.
const LEGACY_HY_ADAPT = {
  b: v => v.b_item,
  c: v => Array.from(v, s => ({ s })),
  d: v => Array.from(v, x => ({ v: x })),
}

// `pyarrow-like` table: rows whose lists are long enough to span several v1 data pages
const PYA_SCHEMA = [['id', i64()], ['s', utf8()], ['li', list(i32())], ['msgs', list(msgT())]]
function pyaRows() {
  const rows = []
  for (let i = 0; i < 12; i++) {
    const li = i === 3 ? Array.from({ length: 5000 }, (_, k) => k % 997 === 500 ? null : (k * 31) % 97)
      : i === 5 ? null : i === 8 ? [] : i === 10 ? [null] : Array.from({ length: i % 4 + 1 }, (_, k) => i * 10 + k)
    const msgs = i === 6 ? Array.from({ length: 120 }, (_, k) => ({ content: `turn ${k}`, role: k % 2 ? 'assistant' : 'user' }))
      : i === 2 ? null : i === 9 ? [] : [{ content: `question ${i}`, role: 'user' }, { content: i === 7 ? null : `answer ${i}`, role: 'assistant' }]
    rows.push({ id: i === 9 ? null : i * 1000 + 1, s: i === 4 ? null : ['red', 'green', 'blue'][i % 3], li, msgs })
  }
  return rows
}

// ---------------------------------------------------------------- writers
function arrowTable(schema, rows, itemName) {
  const opts = { itemName }
  return new arrow.Table([makeBatch(arrowSchema(schema, opts), schema, rows, opts)])
}

const C = pw.Compression, E = pw.Encoding
function writePw(schema, rows, cfg) {
  let b = new pw.WriterPropertiesBuilder()
    .setWriterVersion(cfg.version === 2 ? pw.WriterVersion.V2 : pw.WriterVersion.V1)
    .setCompression(C[cfg.codec])
    .setDictionaryEnabled(cfg.dict)
  if (cfg.rowGroup) b = b.setMaxRowGroupSize(cfg.rowGroup)
  if (cfg.pageLimit) b = b.setDataPageSizeLimit(cfg.pageLimit)
  if (cfg.batch) b = b.setWriteBatchSize(cfg.batch)
  if (cfg.dictLimit) b = b.setDictionaryPageSizeLimit(cfg.dictLimit)
  if (cfg.encoding) b = b.setEncoding(E[cfg.encoding])
  if (cfg.stats) b = b.setStatisticsEnabled(pw.EnabledStatistics[cfg.stats])
  for (const [col, enc] of Object.entries(cfg.colEnc ?? {})) b = b.setColumnEncoding(col, E[enc])
  const props = b.build()
  const wt = pw.Table.fromIPCStream(arrow.tableToIPC(arrowTable(schema, rows), 'stream'))
  return pw.writeParquet(wt, props)
}

function writeHy(schema, rows, cfg) {
  const hschema = [{ name: 'root', num_children: schema.length }, ...schema.flatMap(([n, d]) => hySchema(n, d))]
  const columnData = schema.map(([n, d]) => {
    const col = { name: n, data: rows.map(r => toWriterValue(r[n], d)), nullable: d.nullable }
    if (cfg.colEnc?.[n]) col.encoding = cfg.colEnc[n]
    return col
  })
  const ab = hyw.parquetWriteBuffer({
    columnData, schema: hschema, codec: cfg.codec, rowGroupSize: cfg.rowGroup, pageSize: cfg.pageSize, statistics: cfg.statistics ?? true,
    createdBy: `hyparquet-writer version ${V['hyparquet-writer']}`,
  })
  return new Uint8Array(ab)
}

// arrow-rs 12.0.0 (parquet-wasm 0.3.1): data page v1 only here; list child field named as cfg.itemName
function writePw12(schema, rows, cfg) {
  const props = new pw12.WriterPropertiesBuilder()
    .setWriterVersion(pw12.WriterVersion.V1)
    .setCompression(pw12.Compression[cfg.codec])
    .setDictionaryEnabled(cfg.dict)
    .setDataPagesizeLimit(cfg.pageLimit)
    .setWriteBatchSize(cfg.batch)
    .setMaxRowGroupSize(cfg.rowGroup)
    .setDictionaryPagesizeLimit(cfg.dictLimit)
    .build()
  return pw12.writeParquet(arrow.tableToIPC(arrowTable(schema, rows, cfg.itemName), 'stream'), props)
}

// @dsnp/parquetjs: rows are appended one by one (cfg.toPj converts an expected row to its record);
// pageSize counts ROWS in parquetjs, rowGroupSize too
async function writePj(rows, cfg) {
  const chunks = []
  const sink = new Writable({ write(c, _e, cb) { chunks.push(Buffer.from(c)); cb() } })
  const w = await pj.ParquetWriter.openStream(new pj.ParquetSchema(cfg.pjSchema(cfg.codec)), sink,
    { useDataPageV2: false, rowGroupSize: cfg.rowGroup, pageSize: cfg.pageRows })
  for (const r of rows) await w.appendRow(cfg.toPj(r))
  await w.close()
  return new Uint8Array(Buffer.concat(chunks))
}

// ---------------------------------------------------------------- readers / verification
async function verify(file, bytes, schema, expected, hyAdapt = {}) {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  // reader 1: hyparquet (hyAdapt: per-column mapping of hyparquet's own rendering of a shape, applied to non-null values)
  const hyRows = await hyp.parquetReadObjects({ file: ab, compressors })
  const adapt = (n, v) => hyAdapt[n] && v !== null && v !== undefined ? hyAdapt[n](v) : v
  const got1 = hyRows.map(r => Object.fromEntries(schema.map(([n, d]) => [n, normHy(adapt(n, r[n]), d)])))
  // reader 2: parquet-wasm (arrow-rs) -> Arrow IPC -> apache-arrow
  const t = arrow.tableFromIPC(pw.readParquet(bytes).intoIPCStream())
  const got2 = []
  const cols = schema.map(([n]) => t.getChild(n))
  cols.forEach((c, k) => { if (!c) throw new Error(`${file}: parquet-wasm lost column ${schema[k][0]}`) })
  for (let i = 0; i < t.numRows; i++) got2.push(Object.fromEntries(schema.map(([n, d], k) => [n, normArrow(cols[k].get(i), d)])))
  for (const [who, got] of [['hyparquet', got1], ['parquet-wasm/apache-arrow', got2]]) {
    if (got.length !== expected.length) throw new Error(`${file}: ${who} read ${got.length} rows, expected ${expected.length}`)
    for (let i = 0; i < got.length; i++) {
      if (!sameJson(got[i], expected[i])) {
        throw new Error(`${file}: ${who} row ${i} differs\n  got:      ${JSON.stringify(got[i])}\n  expected: ${JSON.stringify(expected[i])}`)
      }
    }
  }
}

// metadata + page walk (hyparquet metadata parser; page headers read one by one)
// max repetition level of every leaf, from the flat schema list
function maxRepLevels(md) {
  const out = new Map()
  let i = 1
  function walk(prefix, rep) {
    const el = md.schema[i++]
    const p = [...prefix, el.name], r = rep + (el.repetition_type === 'REPEATED' ? 1 : 0)
    if (!el.num_children) out.set(p.join('.'), r)
    for (let k = 0; k < (el.num_children ?? 0); k++) walk(p, r)
  }
  for (let k = 0; k < md.schema[0].num_children; k++) walk([], 0)
  return out
}
// first repetition level stored in a data page (levels are RLE/bit-packed hybrid;
// v1: inside the (decompressed) page after a 4-byte length, v2: uncompressed at the start)
function firstRepLevel(u8, h, codec, maxRep) {
  let page = u8, p = 0
  if (h.type === 'DATA_PAGE') {
    page = decompressPage(u8, h.uncompressed_page_size, codec, compressors)
    p = 4
  }
  let hdr = 0, shift = 0, b
  do { b = page[p++]; hdr |= (b & 0x7f) << shift; shift += 7 } while (b & 0x80)
  const bw = 32 - Math.clz32(maxRep)
  return hdr & 1 ? page[p] & ((1 << bw) - 1) : page[p]
}

function inspect(bytes) {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  const md = hyp.parquetMetadata(ab)
  const view = new DataView(ab)
  const u8all = new Uint8Array(ab)
  const reps = maxRepLevels(md)
  const cols = new Map()
  md.row_groups.forEach((rg, rgi) => {
    rg.columns.forEach(cc => {
      const m = cc.meta_data
      const key = m.path_in_schema.join('.')
      if (!cols.has(key)) cols.set(key, { path: key, type: m.type, codecs: new Set(), encodings: new Set(), pages: new Map(), perChunk: [], dictChunks: 0, midRow: 0 })
      const c = cols.get(key)
      c.codecs.add(m.codec)
      m.encodings.forEach(e => c.encodings.add(e))
      const start = Number(m.dictionary_page_offset ?? m.data_page_offset)
      const end = start + Number(m.total_compressed_size)
      const reader = { view, offset: start }
      let nData = 0, seq = []
      while (reader.offset < end) {
        const h = parquetHeader(reader)
        const enc = h.data_page_header?.encoding ?? h.data_page_header_v2?.encoding ?? h.dictionary_page_header?.encoding
        const k = `${h.type}(${enc})`
        c.pages.set(k, (c.pages.get(k) ?? 0) + 1)
        if (h.type !== 'DICTIONARY_PAGE') nData++; else c.dictChunks++
        const maxRep = reps.get(key)
        if (maxRep && h.type !== 'DICTIONARY_PAGE' &&
          firstRepLevel(u8all.subarray(reader.offset, reader.offset + h.compressed_page_size), h, m.codec, maxRep) !== 0) c.midRow++
        seq.push(h.type === 'DICTIONARY_PAGE' ? 'D' : enc === 'PLAIN' ? 'P' : enc.includes('DICTIONARY') ? 'd' : 'x')
        reader.offset += h.compressed_page_size
      }
      if (reader.offset !== end) throw new Error(`page walk overran column chunk ${key} in row group ${rgi}`)
      c.perChunk.push({ nData, seq: seq.join('') })
    })
  })
  return { md, cols: [...cols.values()] }
}

function schemaLines(md) {
  const out = []
  let i = 1
  function walk(depth) {
    const el = md.schema[i++]
    const bits = [el.repetition_type, el.type ?? 'group', el.name]
    const ann = []
    if (el.converted_type) ann.push(el.converted_type)
    if (el.logical_type) ann.push(`logical=${el.logical_type.type}`)
    out.push('  '.repeat(depth) + bits.join(' ') + (ann.length ? ` (${ann.join(', ')})` : ''))
    for (let k = 0; k < (el.num_children ?? 0); k++) walk(depth + 1)
  }
  for (let k = 0; k < md.schema[0].num_children; k++) walk(0)
  return out
}

// ---------------------------------------------------------------- fixture list
// Dictionary-encoded pages are tiny (bit-packed indexes), so the dictionary variants need a
// smaller data page size limit than the non-dictionary ones to get several pages per chunk.
// 4-byte pages give 2-5 data pages per dictionary chunk; the 5-byte limit (used for the
// codec-only variants, to keep the directory small) still splits the larger chunks.
const DICT_PAGES = { rowGroup: 7, pageLimit: 4, batch: 1 }
const DICT_PAGES5 = { rowGroup: 7, pageLimit: 5, batch: 1 }
const PLAIN_PAGES = { rowGroup: 7, pageLimit: 32, batch: 2 }
const FLAT_DELTA = { s: 'DELTA_BYTE_ARRAY', i32: 'DELTA_BINARY_PACKED', i64: 'DELTA_BINARY_PACKED', req: 'DELTA_BINARY_PACKED', f64: 'BYTE_STREAM_SPLIT', f32: 'BYTE_STREAM_SPLIT' }
const TYPES = { schema: TYPES_SCHEMA, rows: typesRows(), expected: 'types.jsonl' }
// statistics: 'Page' = arrow-rs default (chunk statistics + column index + offset index),
// 'Chunk' = chunk statistics only, 'None' = no statistics (keeps most files small).
const FIXTURES = [
  ...[['UNCOMPRESSED', 'none', 'None', DICT_PAGES], ['SNAPPY', 'snappy', 'Chunk', DICT_PAGES], ['GZIP', 'gzip', 'None', DICT_PAGES5],
    ['ZSTD', 'zstd', 'None', DICT_PAGES5], ['LZ4_RAW', 'lz4raw', 'None', DICT_PAGES5], ['BROTLI', 'brotli', 'None', DICT_PAGES5]].map(([codec, tag, stats, pages]) =>
    ({ file: `types-v1-${tag}.parquet`, ...TYPES, writer: 'pw', cfg: { ...pages, version: 1, codec, dict: true, stats },
      note: `data page v1, ${codec}, dictionary enabled${stats === 'Chunk' ? ', chunk statistics' : ''}.` })),
  ...[['SNAPPY', 'snappy', 'None', DICT_PAGES], ['ZSTD', 'zstd', 'None', DICT_PAGES5]].map(([codec, tag, stats, pages]) =>
    ({ file: `types-v2-${tag}.parquet`, ...TYPES, writer: 'pw', cfg: { ...pages, version: 2, codec, dict: true, stats },
      note: `data page v2, ${codec}, dictionary enabled.` })),
  { file: 'types-v1-plain.parquet', ...TYPES, writer: 'pw', cfg: { ...PLAIN_PAGES, version: 1, codec: 'SNAPPY', dict: false, stats: 'None' },
    note: 'data page v1, SNAPPY, dictionary disabled (the v1 non-dictionary default is PLAIN for every column).' },
  { file: 'types-v2-plain.parquet', ...TYPES, writer: 'pw', cfg: { ...PLAIN_PAGES, version: 2, codec: 'UNCOMPRESSED', dict: false, encoding: 'PLAIN', stats: 'None' },
    note: 'data page v2, UNCOMPRESSED, dictionary disabled, global encoding forced to PLAIN (every column, booleans included, is PLAIN; without forcing, arrow-rs v2 would pick DELTA_*/RLE, see types-delta-v2.parquet).' },
  { file: 'types-delta.parquet', ...TYPES, writer: 'pw', cfg: { ...PLAIN_PAGES, version: 1, codec: 'UNCOMPRESSED', dict: false, colEnc: FLAT_DELTA, stats: 'None' },
    note: 'data page v1, UNCOMPRESSED, dictionary disabled, per-column encodings s=DELTA_BYTE_ARRAY, i32/i64/req=DELTA_BINARY_PACKED, f64/f32=BYTE_STREAM_SPLIT, b=PLAIN. parquet-wasm can only address top-level columns by name (a dotted path is taken as a single name), so the nested columns stay PLAIN here; DELTA_LENGTH_BYTE_ARRAY and nested DELTA_* pages are in types-delta-v2.parquet and types-hyparquet-delta.parquet.' },
  { file: 'types-delta-v2.parquet', ...TYPES, writer: 'pw', cfg: { ...PLAIN_PAGES, version: 2, codec: 'UNCOMPRESSED', dict: false, colEnc: { s: 'DELTA_LENGTH_BYTE_ARRAY', f64: 'BYTE_STREAM_SPLIT', f32: 'BYTE_STREAM_SPLIT' }, stats: 'None' },
    note: 'data page v2, UNCOMPRESSED, dictionary disabled, s forced to DELTA_LENGTH_BYTE_ARRAY, f64/f32 forced to BYTE_STREAM_SPLIT, everything else left to the arrow-rs v2 defaults: DELTA_BINARY_PACKED for every INT32/INT64 leaf (nested ones too), DELTA_BYTE_ARRAY for every BYTE_ARRAY leaf (nested ones too), RLE for BOOLEAN.' },
  { file: 'types-dictfallback.parquet', schema: FALLBACK_SCHEMA, rows: fallbackRows(), expected: 'dictfallback.jsonl', writer: 'pw',
    cfg: { version: 1, codec: 'SNAPPY', dict: true, dictLimit: 1024, pageLimit: 2048, batch: 16 },
    checkFallback: ['t', 'n'],
    note: 'different table (300 rows: t = 300 distinct 60-byte strings, n = int64). data page v1, SNAPPY, dictionary enabled with a 1024-byte dictionary page limit, default row group size (one row group): each column chunk starts with a dictionary page and dictionary-encoded data pages, then the writer falls back to PLAIN data pages in the middle of the chunk.' },
  { file: 'types-hyparquet.parquet', ...TYPES, writer: 'hy', cfg: { codec: 'SNAPPY', rowGroup: 7, pageSize: 32, colEnc: { s: 'RLE_DICTIONARY', i64: 'RLE_DICTIONARY', ls: 'RLE_DICTIONARY', msgs: 'RLE_DICTIONARY', ll: 'RLE_DICTIONARY' } },
    note: 'same types table written by hyparquet-writer (a different implementation): SNAPPY, rowGroupSize 7, pageSize 32 bytes; hyparquet-writer always writes DATA_PAGE_V2 pages and decides per column chunk whether to dictionary-encode (keep the dictionary if it at least halves the size; with 7-row chunks it never does), so dictionary encoding is forced (encoding RLE_DICTIONARY) for s, i64, ls, msgs and ll -- dictionary page + RLE_DICTIONARY v2 data pages, including 0-entry dictionaries for all-null chunks -- and the other columns are PLAIN. Lists are standard 3-level <name>/list/element.' },
  { file: 'types-hyparquet-delta.parquet', ...TYPES, writer: 'hy',
    cfg: { codec: 'UNCOMPRESSED', rowGroup: 7, pageSize: 32, statistics: false,
      colEnc: { s: 'DELTA_BYTE_ARRAY', i32: 'DELTA_BINARY_PACKED', i64: 'DELTA_BINARY_PACKED', f64: 'BYTE_STREAM_SPLIT', f32: 'BYTE_STREAM_SPLIT', b: 'RLE',
        li: 'DELTA_BINARY_PACKED', ls: 'DELTA_LENGTH_BYTE_ARRAY', msgs: 'DELTA_BYTE_ARRAY', ll: 'DELTA_BINARY_PACKED', req: 'DELTA_BINARY_PACKED' } },
    note: 'same types table written by hyparquet-writer, UNCOMPRESSED, rowGroupSize 7, pageSize 32, DATA_PAGE_V2, encodings forced per column (applies to every leaf of the column): s=DELTA_BYTE_ARRAY, i32/i64/req=DELTA_BINARY_PACKED, f64/f32=BYTE_STREAM_SPLIT, b=RLE, li.list.element/ll.list.element.list.element=DELTA_BINARY_PACKED, ls.list.element=DELTA_LENGTH_BYTE_ARRAY, msgs.list.element.{content,role}=DELTA_BYTE_ARRAY; st.a/st.b use the writer default (dictionary or PLAIN).' },
  { file: 'uf.parquet', schema: UF_SCHEMA, rows: ufRows(), expected: 'uf.jsonl', writer: 'pw', cfg: { version: 1, codec: 'SNAPPY', dict: true },
    note: 'UltraFeedback-binarized shape from the first 16 lines of configs/data/text_pairs.jsonl. data page v1, SNAPPY, dictionary enabled, default row group size (one row group).' },
  { file: 'uf-rowgroups.parquet', schema: UF_SCHEMA, rows: null, expected: 'uf.jsonl', writer: 'pw', cfg: { version: 1, codec: 'SNAPPY', dict: true, rowGroup: 5, stats: 'Chunk' },
    note: 'same rows as uf.parquet, row groups of 5 rows (5+5+5+1), chunk statistics only.' },
  { file: 'ids.parquet', schema: IDS_SCHEMA, rows: idsRows(), expected: 'ids.jsonl', writer: 'pw', cfg: { version: 1, codec: 'ZSTD', dict: true },
    note: 'pre-tokenized pairs from the first 24 lines of configs/data/tiny_pairs.jsonl; ref_chosen_logp = -len(chosen_ids)*1.25, ref_rejected_logp = -len(rejected_ids)*1.5. data page v1, ZSTD, dictionary enabled, one row group.' },
  { file: 'prompts.parquet', schema: PROMPTS_SCHEMA, rows: promptsRows(), expected: 'prompts.jsonl', writer: 'pw', cfg: { version: 1, codec: 'SNAPPY', dict: true },
    note: '5 prompts; messages is a nullable list<struct<content,role>> (rows 1 and 3 are null). data page v1, SNAPPY, dictionary enabled, one row group.' },
  { file: 'legacy-lists.parquet', schema: LEGACY_SCHEMA, rows: legacyRows(), expected: 'legacy-lists.jsonl', writer: 'pj', hyAdapt: LEGACY_HY_ADAPT,
    cfg: { codec: 'SNAPPY', rowGroup: 5, pageRows: 2, pjSchema: legacyPjSchema, toPj: legacyToPj },
    note: 'legacy and edge nesting shapes (see the legacy-lists.jsonl notes): 2-level lists (repeated primitive; repeated group with 2 fields; repeated groups named `array` and `<name>_tuple`), a REQUIRED 3-level list with a REQUIRED element, a top-level unannotated REPEATED INT64, a MAP, a REQUIRED struct holding an OPTIONAL struct. Written by @dsnp/parquetjs, the only available writer that can declare these shapes (arrow-rs always writes 3-level lists; hyparquet-writer rejects REPEATED leaves and cannot shred a repeated group with several fields). data page v1, SNAPPY, PLAIN values + RLE levels, no dictionary, row groups of 5 rows (5,5,2), a data page every 2 rows; converted types only (no logical types); each column chunk\'s ColumnMetaData is also written inline after its pages (file_offset points there); rows 10-11 make a, b and m all-null chunks.' },
  { file: 'pyarrow-like.parquet', schema: PYA_SCHEMA, rows: pyaRows(), expected: 'pyarrow-like.jsonl', writer: 'pw12',
    cfg: { codec: 'SNAPPY', dict: true, pageLimit: 768, batch: 64, rowGroup: 8, dictLimit: 512, itemName: 'element' },
    checkMidRow: ['li.list.element', 'msgs.list.element.content'], checkFallback: ['msgs.list.element.content'],
    note: 'data page v1 whose pages do NOT start at row boundaries, as pyarrow writes v1 files: written by arrow-rs 12.0.0 (parquet-wasm 0.3.1), which cuts a page after any 64-level write batch once the page passes 768 bytes, rows or not. SNAPPY, dictionary enabled (dictionary page size limit 512 bytes), row groups of 8 rows (8,4); lists are `<col>/list/element` as pyarrow names them. Row 3 of li (5000 values) spans 16 data pages; msgs.list.element.content falls back from dictionary to PLAIN in the middle of row 6 (120 messages), so its PLAIN page starts mid-row. Dictionary pages are PLAIN and dictionary-indexed data pages RLE_DICTIONARY: no available writer emits PLAIN_DICTIONARY (encoding 2), which pyarrow uses for both in v1 files.' },
]
FIXTURES.find(f => f.file === 'uf-rowgroups.parquet').rows = FIXTURES.find(f => f.file === 'uf.parquet').rows

// ---------------------------------------------------------------- --uf-big (timing data, not a fixture)
// Seeded pseudo-random text: common function words, then (shuffled) the words of text_pairs.jsonl
// and 3000 made-up words from syllables, drawn with a Zipf-like skew, in sentences and paragraphs.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
function makeTextGen(seed) {
  const rnd = mulberry32(seed)
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1))
  const text = fs.readFileSync(path.join(dataDir, 'text_pairs.jsonl'), 'utf8')
  const common = ['the', 'of', 'and', 'to', 'a', 'in', 'is', 'that', 'it', 'for', 'you', 'this', 'with', 'as', 'be', 'on', 'are', 'can', 'or', 'not', 'by', 'an', 'from', 'your', 'which', 'will', 'if', 'more', 'also', 'we']
  const words = [...new Set(text.match(/[A-Za-z]+(?:'[a-z]+)?/g).map(w => w.toLowerCase()))].sort().filter(w => !common.includes(w))
  const syl = ['ka', 'lo', 'mi', 'ren', 'tas', 'vel', 'or', 'an', 'is', 'ku', 'pre', 'sto', 'ne', 'dra', 'fi', 'gul', 'ho', 'ju', 'qua', 'zer', 'thi', 'bro', 'cen', 'ex']
  const made = new Set()
  while (made.size < 3000) { let w = ''; for (let k = int(1, 4); k > 0; k--) w += syl[int(0, syl.length - 1)]; made.add(w) }
  const rest = [...words, ...made, 'café', 'naïve', 'résumé', '–', '漢字', 'Ελλάδα', '🙂']
  for (let k = rest.length - 1; k > 0; k--) { const j = int(0, k);[rest[k], rest[j]] = [rest[j], rest[k]] }
  const vocab = [...common, ...rest]
  const word = () => vocab[Math.floor(vocab.length * rnd() ** 4)]
  const sentence = () => {
    const n = int(4, 22), ws = []
    for (let k = 0; k < n; k++) {
      let w = rnd() < 0.04 ? String(int(0, 99999)) : word()
      if (k === 0) w = w[0].toUpperCase() + w.slice(1)
      if (k < n - 1 && rnd() < 0.08) w += ','
      ws.push(w)
    }
    return ws.join(' ') + '.?!.:'[int(0, 4)]
  }
  const paragraphText = target => {
    let out = ''
    while (out.length < target) out += (out ? (rnd() < 0.2 ? '\n\n' : rnd() < 0.05 ? '\n- ' : ' ') : '') + sentence()
    return out
  }
  return { rnd, int, paragraphText }
}
async function makeUfBig(dir, n) {
  fs.mkdirSync(dir, { recursive: true })
  const g = makeTextGen(20240601)
  const rows = []
  for (let i = 0; i < n; i++) {
    const prompt = g.paragraphText(g.int(80, 400))
    const chosenText = g.paragraphText(g.int(600, 2400)), rejectedText = g.paragraphText(g.int(600, 2400))
    const chosen = [{ content: prompt, role: 'user' }, { content: chosenText, role: 'assistant' }]
    const rejected = [{ content: prompt, role: 'user' }, { content: rejectedText, role: 'assistant' }]
    const score_chosen = [5, 6, 6.5, 7, 7.5, 8, 8.5, 9, 9.5, 10][g.int(0, 9)]
    rows.push({
      prompt, prompt_id: createHash('sha256').update(prompt, 'utf8').digest('hex'),
      chosen, rejected, messages: chosen.map(m => ({ ...m })),
      score_chosen, score_rejected: score_chosen - [0.5, 1, 1.5, 2, 3, 4][g.int(0, 5)],
    })
  }
  rows.forEach((r, i) => UF_SCHEMA.forEach(([c, d]) => validate(r[c], d, `uf-big[${i}].${c}`)))
  const jsonl = path.join(dir, 'uf-big.jsonl'), fd = fs.openSync(jsonl, 'w')
  for (let i = 0; i < n; i += 1000) fs.writeSync(fd, rows.slice(i, i + 1000).map(r => JSON.stringify(r) + '\n').join(''))
  fs.closeSync(fd)
  let t0 = Date.now()
  const bytes = writePw(UF_SCHEMA, rows, { version: 1, codec: 'SNAPPY', dict: true })
  const file = path.join(dir, 'uf-big.parquet')
  fs.writeFileSync(file, bytes)
  console.log(`wrote ${file} (${bytes.length} bytes) in ${Date.now() - t0} ms and ${jsonl} (${fs.statSync(jsonl).size} bytes)`)
  t0 = Date.now()
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  const got = await hyp.parquetReadObjects({ file: ab, compressors })
  if (got.length !== n) throw new Error(`uf-big: hyparquet read ${got.length} rows`)
  for (let i = 0; i < n; i++) {
    const r = Object.fromEntries(UF_SCHEMA.map(([c, d]) => [c, normHy(got[i][c], d)]))
    if (!sameJson(r, rows[i])) throw new Error(`uf-big: row ${i} differs`)
  }
  console.log(`read back and compared ${n} rows with hyparquet in ${Date.now() - t0} ms`)
  const info = inspect(bytes)
  console.log(`created_by ${info.md.created_by}; row groups ${info.md.row_groups.length} (${info.md.row_groups.map(r => Number(r.num_rows)).join(',')})`)
  for (const c of info.cols) console.log(`  ${c.path}: ${[...c.encodings].join(' ')}; pages ${[...c.pages].map(([k, v]) => `${k}x${v}`).join(', ')}; mid-row pages ${c.midRow}`)
}
const bigArg = process.argv.indexOf('--uf-big')
if (bigArg >= 0) {
  await makeUfBig(path.resolve(process.argv[bigArg + 1] ?? '/tmp/pqbig'), Number(process.argv[bigArg + 2] ?? 60000))
  process.exit(0)
}

// ---------------------------------------------------------------- main
fs.mkdirSync(outDir, { recursive: true })
const expectedFiles = new Map()
for (const f of FIXTURES) {
  f.rows.forEach((r, i) => {
    if (JSON.stringify(Object.keys(r)) !== JSON.stringify(f.schema.map(s => s[0]))) throw new Error(`${f.expected} row ${i}: key order`)
    f.schema.forEach(([n, d]) => validate(r[n], d, `${f.expected}[${i}].${n}`))
  })
  const text = f.rows.map(r => JSON.stringify(r)).join('\n') + '\n'
  if (expectedFiles.has(f.expected) && expectedFiles.get(f.expected) !== text) throw new Error(`conflicting ${f.expected}`)
  expectedFiles.set(f.expected, text)
}
for (const [name, text] of expectedFiles) fs.writeFileSync(path.join(outDir, name), text)

const report = []
for (const f of FIXTURES) {
  const bytes = f.writer === 'pw' ? writePw(f.schema, f.rows, f.cfg) : f.writer === 'hy' ? writeHy(f.schema, f.rows, f.cfg)
    : f.writer === 'pj' ? await writePj(f.rows, f.cfg) : writePw12(f.schema, f.rows, f.cfg)
  fs.writeFileSync(path.join(outDir, f.file), bytes)
  await verify(f.file, bytes, f.schema, f.rows, f.hyAdapt)
  const info = inspect(bytes)
  for (const col of f.checkMidRow ?? []) {
    if (!info.cols.find(c => c.path === col)?.midRow) throw new Error(`${f.file}: column ${col} has no data page starting mid-row`)
  }
  if (f.file.startsWith('types-') && f.writer === 'pw' && f.file !== 'types-dictfallback.parquet') {
    if (info.md.row_groups.length < 5) throw new Error(`${f.file}: expected several row groups`)
    if (!info.cols.some(c => c.perChunk.some(p => p.nData > 1))) throw new Error(`${f.file}: expected multi-page column chunks`)
  }
  for (const col of f.checkFallback ?? []) {
    const c = info.cols.find(c => c.path === col)
    const hasDict = [...c.encodings].some(e => e.includes('DICTIONARY'))
    const seq = c.perChunk[0].seq
    if (!hasDict || !c.encodings.has('PLAIN') || !/^Dd+P+$/.test(seq)) {
      throw new Error(`${f.file}: column ${col} did not fall back (encodings ${[...c.encodings]}, pages ${seq})`)
    }
  }
  report.push({ f, info, size: bytes.length })
  console.log(`ok ${f.file} (${bytes.length} bytes, ${info.md.row_groups.length} row groups) verified with hyparquet and parquet-wasm`)
}

// ---------------------------------------------------------------- README
const W0 = {
  pw: `parquet-wasm ${V['parquet-wasm']} (arrow-rs parquet writer compiled to wasm; input built with apache-arrow ${V['apache-arrow']})`,
  hy: `hyparquet-writer ${V['hyparquet-writer']}`,
  pj: `@dsnp/parquetjs ${V['@dsnp/parquetjs']}`,
  pw12: `parquet-wasm ${V['parquet-wasm-arrowrs12']} (arrow-rs 12.0.0)`,
}
const L = []
L.push('# Parquet reader fixtures', '')
L.push('Generated by `scripts/make_parquet_fixtures.mjs` -- do not edit by hand. Regenerate with:', '')
L.push('```sh')
L.push(`mkdir -p /tmp/pqgen && cd /tmp/pqgen && npm init -y >/dev/null && \\`)
L.push(`npm install parquet-wasm@${V['parquet-wasm']} apache-arrow@${V['apache-arrow']} hyparquet-writer@${V['hyparquet-writer']} hyparquet@${V.hyparquet} hyparquet-compressors@${V['hyparquet-compressors']} \\`)
L.push(`  @dsnp/parquetjs@${V['@dsnp/parquetjs']} parquet-wasm-arrowrs12@npm:parquet-wasm@${V['parquet-wasm-arrowrs12']} && \\`)
L.push('node /work/main/scripts/make_parquet_fixtures.mjs /work/main/tests/fixtures/parquet')
L.push('```', '')
L.push(`All files are written by implementations OUTSIDE this repo: ${W0.pw}; ${W0.hy} (an independent JavaScript writer); ${W0.pj} (another JavaScript writer, for legacy-lists.parquet); and the arrow-rs 12.0.0 writer bundled in ${W0.pw12.replace(/ \(.*/, '')} (for pyarrow-like.parquet).`)
L.push(`Every file was read back by two readers -- hyparquet ${V.hyparquet} (+ hyparquet-compressors ${V['hyparquet-compressors']} for gzip/brotli/zstd/lz4) and parquet-wasm \`readParquet\` -> apache-arrow \`tableFromIPC\` -- and compared value by value with the expected JSONL; the generator aborts on any difference.`, '')
L.push('## Expected rows (JSONL)', '')
L.push('One JSON object per row, keys in column order; nulls are JSON `null`; lists are arrays; structs are objects with every field present (null fields as `null`); int64 values are JSON numbers (all |v| < 2^53); doubles are printed with JavaScript\'s shortest round-trip formatting (e.g. `0.1`, `-1e+300`, `5e-324`); float32 values are all exactly representable in binary32 and are printed as the exact double value (e.g. `3.4028234663852886e+38`, `1.401298464324817e-45`). A null struct (`null`) and a struct whose fields are all null (`{"a":null,"b":null}`) are different and both occur. The expected rows are generated from the in-memory data, not by reading any Parquet file.', '')
L.push('| expected file | rows | used by |', '|---|---|---|')
for (const [name, text] of expectedFiles) {
  L.push(`| \`${name}\` | ${text.split('\n').length - 1} | ${report.filter(r => r.f.expected === name).map(r => '`' + r.f.file + '`').join(', ')} |`)
}
L.push('')
L.push('Notes on the data:')
L.push('- `types.jsonl` (40 rows): columns `s` utf8, `i32`, `i64`, `f64`, `f32`, `b` bool, `li` list<int32>, `ls` list<utf8>, `st` struct<a: int32, b: utf8>, `msgs` list<struct<content: utf8, role: utf8>>, `ll` list<list<int64>>, all nullable at every level, and `req` non-nullable int64 (REQUIRED, value = row index). Edge cases: empty strings, non-ASCII UTF-8 (`' + NONASCII + '`, Greek), escapes (tab, newline, quotes, backslash), a >128-byte string, empty lists, null lists, null list elements, null structs, structs with null fields, int32 min/max, int64 +-(2^53-1), 2^32, -3e9, doubles 0.1/-1e300/1.5/5e-324/1.7976931348623157e308/1e21, float32 max, min subnormal, min normal. Rows 14..20 (= the whole third row group when row groups are 7 rows) have `i32` all null; rows 28..34 (fifth row group) have `s` all null.')
L.push('- `dictfallback.jsonl` (300 rows): `t` = 300 distinct 60-byte ASCII strings, `n` int64.')
L.push(`- \`uf.jsonl\` (16 rows): \`prompt\`, \`prompt_id\` = sha256(prompt) hex, \`chosen\`/\`rejected\`/\`messages\` list<struct<content, role>> (field order content, role as in the HF dataset; \`messages\` = \`chosen\`), \`score_chosen\` = 6 + (i mod 5) * 0.75, \`score_rejected\` = score_chosen - 2.5 - (i mod 3) * 0.5. Input line(s) (1-based) ${[...new Set(ufStringLines)].join(', ')} of text_pairs.jsonl have plain-string chosen/rejected; they were converted to the 2-message form [{content: prompt, role: "user"}, {content: <string>, role: "assistant"}].`)
L.push('- `ids.jsonl` (24 rows): `prompt_ids`, `chosen_ids`, `rejected_ids` list<int32>, `ref_chosen_logp` = -len(chosen_ids)*1.25, `ref_rejected_logp` = -len(rejected_ids)*1.5.')
L.push('- `prompts.jsonl` (5 rows): `prompt` utf8, `messages` nullable list<struct<content, role>> (null in rows 1 and 3, 0-based).')
L.push('- `legacy-lists.jsonl` (12 rows): one column per shape, rendered as the C reader does: `a` 2-level list of INT32 (the REPEATED field is the element) -> array of ints; `b` LIST whose repeated group `b_item` has fields x, y -> array of `{"x","y"}`; `c` repeated group named `array` -> array of `{"s"}`; `d` repeated group `d_tuple` -> array of `{"v"}`; `e` REQUIRED 3-level list with a REQUIRED element -> array of strings, never null; `r` top-level unannotated REPEATED INT64 -> array, `[]` when the row has none, never null; `m` MAP -> `{"key_value": [{"key","value"}, ...]}` (the repeated group as an array under its name), `null` when m is null, `{"key_value": []}` when empty; `st` REQUIRED struct -> `{"id", "inner": null | {"name"}}`. For a..d and m: `null` = the annotated group is null, `[]` = present but empty. hyparquet renders b as `{b_item: [...]}`, c and d as arrays of the bare leaf values and m as a JS object; the generator maps those to the shapes above before comparing (parquet-wasm returns List<Struct> and Map, i.e. these shapes, directly).')
L.push('- `pyarrow-like.jsonl` (12 rows): `id` int64, `s` utf8, `li` list<int32> (row 3: 5000 values, null at every k = 500 mod 997; row 5 null, row 8 `[]`, row 10 `[null]`), `msgs` list<struct<content, role>> (row 6: 120 messages; row 2 null, row 9 `[]`, row 7 has a null content); `id` null in row 9, `s` null in row 4.', '')
L.push('Parquet list naming: files written by parquet-wasm use the Arrow child field name given to arrow-rs, i.e. 3-level lists `<col>/list/item` (Arrow convention); files written by hyparquet-writer use `<col>/list/element` (Parquet spec convention). Files written by parquet-wasm also carry an `ARROW:schema` key/value entry in the footer. legacy-lists.parquet has exactly the groups its notes list; pyarrow-like.parquet uses `<col>/list/element`.', '')
L.push('Writer settings common to the `types-*` files from parquet-wasm (except types-dictfallback): max row group size 7 rows (40 rows -> 6 row groups: 7,7,7,7,7,5); dictionary variants use write batch size 1 and a data page size limit of 4 bytes (types-v1-none, types-v1-snappy, types-v2-snappy) or 5 bytes (the other dictionary variants, fewer pages to keep the directory small), non-dictionary variants 32 bytes and batch size 2 (dictionary-index pages are tiny, so they need the lower limit) -- most column chunks therefore have several data pages, and dictionary chunks have several data pages sharing one dictionary page. An all-null column chunk (i32 in row group 2, s in row group 4) still gets a dictionary page holding 0 values in the dictionary variants (with LZ4_RAW its payload is the 1-byte empty LZ4 block 0x00). arrow-rs writes dictionary pages with encoding PLAIN and dictionary-encoded data pages with RLE_DICTIONARY in both v1 and v2 (never PLAIN_DICTIONARY, which pyarrow uses for v1 files), and arrow-rs 59 starts every data page at a row boundary, even in v1 (arrow-rs 12, used for pyarrow-like.parquet, does not). arrow-rs always writes an offset index; statistics vary per file (see each file).', '')
L.push('Legend for the per-file column tables below: "pages" counts page headers by `type(encoding)` over all row groups, where DICT = DICTIONARY_PAGE, V1 = DATA_PAGE, V2 = DATA_PAGE_V2 (found by walking the page headers of every column chunk); "pages per chunk" gives one string per row group: `D` dictionary page, `d` dictionary-encoded data page, `P` PLAIN data page, `x` data page with another encoding (DELTA_*, BYTE_STREAM_SPLIT, RLE).', '')
L.push('## Files', '')
L.push('| file | bytes | writer | rows | row groups | what it covers |', '|---|---|---|---|---|---|')
for (const { f, info, size } of report) {
  L.push(`| \`${f.file}\` | ${size} | ${W0[f.writer].replace(/ \(arrow-rs parquet.*/, '')} | ${Number(info.md.num_rows)} | ${info.md.row_groups.length} (${info.md.row_groups.map(r => Number(r.num_rows)).join(',')}) | ${f.note.replace(/\|/g, '\\|')} |`)
}
L.push('')
const seenSchemas = new Map()
const PT = { DICTIONARY_PAGE: 'DICT', DATA_PAGE: 'V1', DATA_PAGE_V2: 'V2' }
for (const { f, info, size } of report) {
  L.push(`### ${f.file}`, '')
  L.push(`- created_by \`${info.md.created_by}\`; expected rows \`${f.expected}\`; see the Files table above for what it covers`)
  const cfg = f.cfg
  if (f.writer === 'pw') {
    L.push(`- writer properties: WriterVersion ${cfg.version === 2 ? 'V2 (DATA_PAGE_V2)' : 'V1 (DATA_PAGE)'}, compression ${cfg.codec}, dictionary ${cfg.dict ? 'enabled' : 'disabled'}, max row group size ${cfg.rowGroup ?? 'default (1048576)'}, data page size limit ${cfg.pageLimit ?? 'default (1 MiB)'} bytes, write batch size ${cfg.batch ?? 'default (1024)'}${cfg.dictLimit ? `, dictionary page size limit ${cfg.dictLimit} bytes` : ''}${cfg.encoding ? `, global encoding ${cfg.encoding}` : ''}${cfg.colEnc ? ', column encodings ' + Object.entries(cfg.colEnc).map(([k, v]) => `${k}=${v}`).join(' ') : ''}, statistics ${cfg.stats ?? 'Page (default)'}`)
  } else if (f.writer === 'pw12') {
    L.push(`- writer properties (arrow-rs 12.0.0): WriterVersion V1 (DATA_PAGE), compression ${cfg.codec}, dictionary ${cfg.dict ? 'enabled' : 'disabled'}, max row group size ${cfg.rowGroup}, data page size limit ${cfg.pageLimit} bytes, write batch size ${cfg.batch}, dictionary page size limit ${cfg.dictLimit} bytes, statistics default; list child field \`${cfg.itemName}\``)
  } else if (f.writer === 'pj') {
    L.push(`- writer options (@dsnp/parquetjs): useDataPageV2 false (DATA_PAGE v1), rowGroupSize ${cfg.rowGroup} rows, pageSize ${cfg.pageRows} rows, compression ${cfg.codec} on every leaf, encoding PLAIN on every leaf (RLE levels), statistics and page index default (on)`)
  } else {
    L.push(`- writer options: codec ${cfg.codec}, rowGroupSize ${cfg.rowGroup}, pageSize ${cfg.pageSize}, statistics ${cfg.statistics === false ? 'off' : 'on (default)'}${cfg.colEnc ? ', column encodings ' + Object.entries(cfg.colEnc).map(([k, v]) => `${k}=${v}`).join(' ') : ''}`)
  }
  const hasIdx = info.md.row_groups.some(rg => rg.columns.some(c => c.column_index_offset !== undefined))
  const hasOff = info.md.row_groups.some(rg => rg.columns.some(c => c.offset_index_offset !== undefined))
  const hasStats = info.md.row_groups.some(rg => rg.columns.some(c => c.meta_data.statistics))
  const codecs = [...new Set(info.cols.flatMap(c => [...c.codecs]))]
  L.push(`- codec ${codecs.join(', ')}; row groups ${info.md.row_groups.length} (${info.md.row_groups.map(r => Number(r.num_rows)).join(',')} rows); chunk statistics ${hasStats ? 'yes' : 'no'}; column index ${hasIdx ? 'yes' : 'no'}; offset index ${hasOff ? 'yes' : 'no'}; footer key/value: ${(info.md.key_value_metadata ?? []).map(k => k.key).join(', ') || 'none'}`)
  const mid = info.cols.filter(c => c.midRow)
  L.push(`- data pages that begin in the middle of a row (first repetition level != 0): ${mid.length ? mid.map(c => `${c.path} ×${c.midRow}`).join(', ') : 'none'}`)
  const sl = schemaLines(info.md).join('\n')
  if (seenSchemas.has(sl)) {
    L.push(`- Parquet schema: same as \`${seenSchemas.get(sl)}\``, '')
  } else {
    seenSchemas.set(sl, f.file)
    L.push('- Parquet schema:', '', '```', sl, '```', '')
  }
  L.push('| column | type | chunk encodings | pages (all row groups) | pages per chunk |', '|---|---|---|---|---|')
  for (const c of info.cols) {
    const pages = [...c.pages].map(([k, n]) => `${k.replace(/^\w+/, t => PT[t] ?? t)}×${n}`).join(', ')
    L.push(`| \`${c.path}\` | ${c.type} | ${[...c.encodings].join(' ')} | ${pages} | ${c.perChunk.map(p => p.seq).join(' ')} |`)
  }
  L.push('')
}
fs.writeFileSync(path.join(outDir, 'README.md'), L.join('\n'))

let total = 0
for (const name of fs.readdirSync(outDir)) total += fs.statSync(path.join(outDir, name)).size
console.log(`wrote ${report.length} parquet files + ${expectedFiles.size} jsonl + README.md to ${outDir} (${total} bytes in the directory)`)
if (total > 480 * 1024) { console.error('output directory is larger than 480 KB'); process.exit(1) }
