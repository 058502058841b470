// Generates the Arrow IPC reader test fixtures in tests/fixtures/arrow/ using an OUTSIDE Arrow
// implementation (apache-arrow, the JavaScript implementation), plus Hugging Face
// `datasets`-style save_to_disk / DatasetDict directories around them, and a README.md
// describing every file.
//
// How to run (node >= 20; packages are resolved from the CURRENT directory's node_modules):
//
//   mkdir -p /tmp/pqgen && cd /tmp/pqgen && npm init -y >/dev/null && \
//   npm install apache-arrow@21.2.0 parquet-wasm@0.8.0 && \
//   node /work/main/scripts/make_arrow_fixtures.mjs /work/main/tests/fixtures/arrow
//
// (/tmp/pqgen is the same package directory as scripts/make_parquet_fixtures.mjs uses. Only
// apache-arrow 21.2.0 writes anything; parquet-wasm 0.8.0 is used only to READ BACK the stream
// files with a second, independent IPC reader: arrow-rs's StreamReader, compiled to wasm.)
//
// The helpers shared with make_parquet_fixtures.mjs (package loading, the schema language and the
// `types` / `uf` schemas, Arrow type/batch construction, validate, the read-back comparison) are
// in ./fixture_common.mjs, next to this script; it is imported relative to the script and
// resolves packages from the current directory too, so the command above is all it takes.
//
// Inputs (relative to this script): ../tests/fixtures/parquet/types.jsonl (40 rows) and
// ../tests/fixtures/parquet/uf.jsonl (16 rows), which are the EXPECTED rows of these fixtures
// too. The rows are parsed into JS values, checked against the declared schema (and
// re-serialised with JSON.stringify, which must reproduce each input line byte for byte), and
// the Arrow data is built from those JS values. Every written file is then read back with
// apache-arrow (tableFromIPC, and RecordBatchReader for the batch structure), its framing is
// walked message by message, and every value is compared strictly with the expected rows
// (from the JS data, never from a file read back). Every IPC stream file is also read by
// arrow-rs (parquet-wasm Table.fromIPCStream), re-encoded by arrow-rs and decoded again with
// apache-arrow, and compared the same way (schema, metadata, batch row counts, values).
// Any difference aborts with exit code 1.
// The output is deterministic: running it twice gives byte-identical files.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  req, load, pkgVersion, arrow, TYPES_SCHEMA, UF_SCHEMA,
  arrowSchema, makeBatch, validate, normArrow as commonNormArrow, sameJson,
} from './fixture_common.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const outDir = path.resolve(process.argv[2] ?? path.join(here, '../tests/fixtures/arrow'))
const pqDir = path.join(here, '../tests/fixtures/parquet')

// ---------------------------------------------------------------- package loading
// (req, load, pkgVersion and apache-arrow itself come from fixture_common.mjs)
const arrowDir = path.dirname(req.resolve('apache-arrow'))
const { Footer } = await import(pathToFileURL(path.join(arrowDir, 'ipc/metadata/file.mjs')).href)
const ARROW_VERSION = pkgVersion('apache-arrow')
if (ARROW_VERSION !== '21.2.0') throw new Error(`apache-arrow ${ARROW_VERSION} found, 21.2.0 expected (pinned)`)
const pw = await load('parquet-wasm')
const PW_VERSION = pkgVersion('parquet-wasm') // package.json is not in parquet-wasm's "exports"
if (PW_VERSION !== '0.8.0') throw new Error(`parquet-wasm ${PW_VERSION} found, 0.8.0 expected (pinned)`)
console.log('apache-arrow', ARROW_VERSION, '/ parquet-wasm', PW_VERSION)

// ---------------------------------------------------------------- type descriptors
// The schema language, TYPES_SCHEMA, UF_SCHEMA, the Arrow type/batch construction, validate,
// normArrow and sameJson are shared with make_parquet_fixtures.mjs: see fixture_common.mjs.
// Their Arrow options here: { large } (true: LargeUtf8 for every string, LargeList for every
// list, at every level); list child fields keep the default name 'item', as pyarrow writes them.
// apache-arrow value -> canonical JSON value (int64 must come back as a BigInt)
const normArrow = (v, d) => commonNormArrow(v, d, true)

// ---------------------------------------------------------------- schemas and expected rows
// (TYPES_SCHEMA and UF_SCHEMA are in fixture_common.mjs)
function readJsonl(file, schema, nRows) {
  const lines = fs.readFileSync(path.join(pqDir, file), 'utf8').split('\n')
  if (lines.pop() !== '') throw new Error(`${file}: no final newline`)
  if (lines.length !== nRows) throw new Error(`${file}: ${lines.length} rows, expected ${nRows}`)
  return lines.map((line, i) => {
    const row = JSON.parse(line)
    const keys = Object.keys(row), want = schema.map(c => c[0])
    if (JSON.stringify(keys) !== JSON.stringify(want)) throw new Error(`${file}:${i + 1}: keys ${keys} != ${want}`)
    for (const [n, d] of schema) validate(row[n], d, `${file}:${i + 1}.${n}`)
    if (JSON.stringify(row) !== line) throw new Error(`${file}:${i + 1}: JSON.stringify does not reproduce the line`)
    return row
  })
}
const typesRows = readJsonl('types.jsonl', TYPES_SCHEMA, 40)
const ufRows = readJsonl('uf.jsonl', UF_SCHEMA, 16)

// ---------------------------------------------------------------- datasets (Hugging Face) metadata
// Features.to_dict() as datasets 4.x writes it: Value -> {"dtype", "_type": "Value"},
// a list (pa.list_) -> {"feature": ..., "_type": "List"}, a struct -> a plain dict.
function hfFeature(d) {
  switch (d.t) {
    case 'utf8': return { dtype: 'string', _type: 'Value' }
    case 'i32': return { dtype: 'int32', _type: 'Value' }
    case 'i64': return { dtype: 'int64', _type: 'Value' }
    case 'f64': return { dtype: 'float64', _type: 'Value' }
    case 'f32': return { dtype: 'float32', _type: 'Value' }
    case 'bool': return { dtype: 'bool', _type: 'Value' }
    case 'list': return { feature: hfFeature(d.of), _type: 'List' }
    case 'struct': return Object.fromEntries(d.fields.map(([n, fd]) => [n, hfFeature(fd)]))
  }
  throw new Error(d.t)
}
const hfFeatures = schema => Object.fromEntries(schema.map(([n, d]) => [n, hfFeature(d)]))
// Python json.dumps(obj) with default settings (separators ', ' and ': ', ensure_ascii)
function pyDumps(v) {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
  if (typeof v === 'number') { if (!Number.isInteger(v)) throw new Error('pyDumps: floats not needed'); return String(v) }
  if (Array.isArray(v)) return '[' + v.map(pyDumps).join(', ') + ']'
  return '{' + Object.entries(v).map(([k, x]) => pyDumps(k) + ': ' + pyDumps(x)).join(', ') + '}'
}
// Python json.dump(obj, f, indent=2) for ASCII-only data == JSON.stringify(obj, null, 2)
function pyIndent2(v) {
  const s = JSON.stringify(v, null, 2)
  if (!/^[\x00-\x7e]*$/.test(s)) throw new Error('pyIndent2: non-ASCII')
  return s
}
// ArrowWriter._build_metadata(DatasetInfo(features=...)) with no fingerprint (as save_to_disk uses it)
const hfSchemaMetadata = schema => new Map([['huggingface', pyDumps({ info: { features: hfFeatures(schema) } })]])

// ---------------------------------------------------------------- building and writing
// rows split into consecutive batches of the given sizes (opts: the Arrow options, { large })
function makeBatches(aschema, schema, rows, sizes, opts) {
  if (sizes.reduce((a, b) => a + b, 0) !== rows.length) throw new Error('batch sizes do not add up')
  const out = []
  let at = 0
  for (const n of sizes) { out.push(makeBatch(aschema, schema, rows.slice(at, at + n), opts)); at += n }
  return out
}
function writeIpc(format, aschema, batches) {
  const W = format === 'file' ? arrow.RecordBatchFileWriter : arrow.RecordBatchStreamWriter
  // a Table with no batches still carries the schema (used for the 0-row stream)
  const input = batches.length ? batches : new arrow.Table(aschema)
  return W.writeAll(input).toUint8Array(true)
}

// ---------------------------------------------------------------- reading back / inspecting
// Arrow type as text, pyarrow-like but with Arrow's own type names; " not null" marks non-nullable
function typeText(t) {
  switch (t.typeId) {
    case arrow.Type.Utf8: return 'utf8'
    case arrow.Type.LargeUtf8: return 'large_utf8'
    case arrow.Type.Bool: return 'bool'
    case arrow.Type.Int: return `${t.isSigned ? 'int' : 'uint'}${t.bitWidth}`
    case arrow.Type.Float: return ({ 0: 'float16', 1: 'float32', 2: 'float64' })[t.precision]
    case arrow.Type.List: return `list<${fieldText(t.children[0])}>`
    case arrow.Type.LargeList: return `large_list<${fieldText(t.children[0])}>`
    case arrow.Type.Struct: return `struct<${t.children.map(fieldText).join(', ')}>`
  }
  throw new Error(`unexpected Arrow type ${arrow.Type[t.typeId]}`)
}
const fieldText = f => `${f.name}: ${typeText(f.type)}${f.nullable ? '' : ' not null'}`
const schemaText = s => s.fields.map(fieldText)
const metaObj = m => Object.fromEntries([...(m ?? new Map())].sort())

const u32 = (b, at) => new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true)
const i32le = (b, at) => new DataView(b.buffer, b.byteOffset + at, 4).getInt32(0, true)
const MAGIC = Buffer.from('ARROW1')

// the buffer layout the README states: per node (depth-first over the schema), the validity
// buffer is empty iff null_count is 0, bitmaps (validity, bool values) have lengths that are a
// multiple of 64, every buffer length is a multiple of 8
function checkBuffers(file, schemaFields, h) {
  const flat = []
  const walk = fs => { for (const f of fs) { flat.push(f); walk(f.type.children ?? []) } }
  walk(schemaFields)
  if (flat.length !== h.nodes.length) throw new Error(`${file}: ${h.nodes.length} nodes for ${flat.length} fields`)
  let bi = 0
  flat.forEach((f, k) => {
    const id = f.type.typeId
    const nb = id === arrow.Type.Utf8 || id === arrow.Type.LargeUtf8 ? 3 : id === arrow.Type.Struct ? 1 : 2
    const bufs = h.buffers.slice(bi, bi + nb).map(x => x.length)
    bi += nb
    const bad = msg => { throw new Error(`${file}: node ${k} (${f.name}): ${msg}: [${bufs}]`) }
    if ((bufs[0] === 0) !== (h.nodes[k].nullCount === 0)) bad('validity buffer presence vs null_count')
    if (bufs[0] % 64 !== 0 || (id === arrow.Type.Bool && bufs[1] % 64 !== 0)) bad('bitmap length not a multiple of 64')
    if (bufs.some(x => x % 8 !== 0)) bad('buffer length not a multiple of 8')
  })
  if (bi !== h.buffers.length) throw new Error(`${file}: ${h.buffers.length} buffers, ${bi} expected`)
}

// walks the encapsulated messages from `at` to the end-of-stream marker; returns a description.
// schemaFields: the fields from the footer (file format) or null (taken from the Schema message)
function walkMessages(bytes, at, file, schemaFields = null) {
  const msgs = []
  for (;;) {
    if (at + 8 > bytes.length) throw new Error(`${file}: truncated at ${at}`)
    if (u32(bytes, at) !== 0xffffffff) throw new Error(`${file}: no continuation marker at ${at}`)
    const metaLen = i32le(bytes, at + 4)
    if (metaLen === 0) { msgs.push({ kind: 'EOS', at }); return { msgs, end: at + 8 } }
    if ((8 + metaLen) % 8 !== 0) throw new Error(`${file}: metadata not padded to 8 at ${at}`)
    const m = arrow.Message.decode(bytes.subarray(at + 8, at + 8 + metaLen))
    if (m.version !== arrow.MetadataVersion.V5) throw new Error(`${file}: metadata version ${m.version}`)
    const bodyLength = Number(m.bodyLength)
    if (bodyLength % 8 !== 0) throw new Error(`${file}: body not padded to 8 at ${at}`)
    const e = { at, metaLen: 8 + metaLen, bodyLength }
    if (m.isSchema()) { e.kind = 'Schema'; schemaFields = m.header().fields }
    else if (m.isRecordBatch()) {
      const h = m.header()
      checkBuffers(file, schemaFields, h)
      if (h.compression) throw new Error(`${file}: compressed body`)
      e.kind = 'RecordBatch'; e.rows = Number(h.length)
      e.nodes = h.nodes.length; e.buffers = h.buffers.length
      e.emptyBuffers = h.buffers.filter(x => x.length === 0).length
      for (const x of h.buffers) {
        if (x.offset % 8 !== 0 || x.offset + x.length > bodyLength) throw new Error(`${file}: bad buffer region at ${at}`)
      }
    } else throw new Error(`${file}: unexpected message type ${m.headerType}`)
    msgs.push(e)
    at += 8 + metaLen + bodyLength
  }
}

function inspect(file, bytes, format) {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (format === 'stream') {
    if (b.subarray(0, 6).equals(MAGIC)) throw new Error(`${file}: stream starts with ARROW1`)
    const { msgs, end } = walkMessages(bytes, 0, file)
    if (end !== bytes.length) throw new Error(`${file}: ${bytes.length - end} bytes after end-of-stream`)
    if (msgs[0].kind !== 'Schema' || msgs.slice(1).some(m => m.kind === 'Schema')) throw new Error(`${file}: schema message must come first, once`)
    return { msgs }
  }
  // file: ARROW1\0\0 <messages ... EOS> <footer flatbuffer> <int32 footer length> ARROW1
  if (!b.subarray(0, 6).equals(MAGIC) || b[6] !== 0 || b[7] !== 0) throw new Error(`${file}: no leading ARROW1\\0\\0`)
  if (!b.subarray(b.length - 6).equals(MAGIC)) throw new Error(`${file}: no trailing ARROW1`)
  const footerLen = i32le(bytes, b.length - 10)
  const footerStart = b.length - 10 - footerLen
  const footer = Footer.decode(bytes.subarray(footerStart, footerStart + footerLen))
  const { msgs, end } = walkMessages(bytes, 8, file, footer.schema.fields)
  if (end !== footerStart) throw new Error(`${file}: footer does not follow end-of-stream (${end} vs ${footerStart})`)
  const blocks = [...footer.recordBatches()].map(x => ({ offset: Number(x.offset), metaDataLength: x.metaDataLength, bodyLength: Number(x.bodyLength) }))
  const rbs = msgs.filter(m => m.kind === 'RecordBatch')
  if (blocks.length !== rbs.length || footer.numDictionaries !== 0) throw new Error(`${file}: footer lists ${blocks.length} batches, ${rbs.length} found`)
  blocks.forEach((bl, i) => {
    const m = rbs[i]
    if (bl.offset !== m.at || bl.metaDataLength !== m.metaLen || bl.bodyLength !== m.bodyLength) throw new Error(`${file}: footer block ${i} does not match the message`)
  })
  return { msgs, footerStart, footerLen, blocks, footerSchema: footer.schema }
}

// full read-back check of one IPC file
function verify(file, bytes, format, aschemaWanted, schema, expected, batchSizes) {
  const info = inspect(file, bytes, format)
  const reader = arrow.RecordBatchReader.from(bytes)
  reader.open()
  if (format === 'file' ? !reader.isFile() : !reader.isStream()) throw new Error(`${file}: apache-arrow did not open it as ${format}`)
  let rbSizes = [...reader].map(rb => rb.numRows)
  // for a stream with no record batch, apache-arrow's reader yields one 0-row placeholder batch
  // (the message walk above is what shows that no RecordBatch message exists)
  if (batchSizes.length === 0 && JSON.stringify(rbSizes) === '[0]') rbSizes = []
  if (JSON.stringify(rbSizes) !== JSON.stringify(batchSizes)) throw new Error(`${file}: batches ${rbSizes} != ${batchSizes}`)
  const msgSizes = info.msgs.filter(m => m.kind === 'RecordBatch').map(m => m.rows)
  if (JSON.stringify(msgSizes) !== JSON.stringify(batchSizes)) throw new Error(`${file}: record batch messages ${msgSizes} != ${batchSizes}`)
  const want = schemaText(aschemaWanted)
  if (info.footerSchema && JSON.stringify(schemaText(info.footerSchema)) !== JSON.stringify(want)) throw new Error(`${file}: footer schema differs`)
  const t = arrow.tableFromIPC(bytes)
  compareTable(`${file} (apache-arrow)`, t, aschemaWanted, schema, expected)
  if (format === 'stream') {
    // second reader: arrow-rs (parquet-wasm). Its Table keeps the record batches as read.
    const wt = pw.Table.fromIPCStream(bytes)
    const rsSizes = []
    for (let i = 0; i < wt.numBatches; i++) rsSizes.push(wt.recordBatch(i).numRows)
    if (JSON.stringify(rsSizes) !== JSON.stringify(batchSizes)) throw new Error(`${file}: arrow-rs read batches ${rsSizes} != ${batchSizes}`)
    compareTable(`${file} (arrow-rs)`, arrow.tableFromIPC(wt.intoIPCStream()), aschemaWanted, schema, expected)
  }
  return { ...info, schemaLines: schemaText(t.schema), metadata: metaObj(t.schema.metadata) }
}
function compareTable(who, t, aschemaWanted, schema, expected) {
  const got = schemaText(t.schema), want = schemaText(aschemaWanted)
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${who}: schema read back\n  ${got.join('\n  ')}\nwanted\n  ${want.join('\n  ')}`)
  if (JSON.stringify(metaObj(t.schema.metadata)) !== JSON.stringify(metaObj(aschemaWanted.metadata))) throw new Error(`${who}: schema metadata differs`)
  if (t.numRows !== expected.length) throw new Error(`${who}: ${t.numRows} rows, expected ${expected.length}`)
  const cols = schema.map(([n]) => t.getChild(n))
  for (let i = 0; i < t.numRows; i++) {
    const row = Object.fromEntries(schema.map(([n, d], k) => [n, normArrow(cols[k].get(i), d)]))
    if (!sameJson(row, expected[i])) {
      throw new Error(`${who}: row ${i} differs\n  got:      ${JSON.stringify(row)}\n  expected: ${JSON.stringify(expected[i])}`)
    }
  }
}

// ---------------------------------------------------------------- the fixtures
fs.mkdirSync(outDir, { recursive: true })
const written = [] // { rel, bytes, ... } in README order
function put(rel, data) {
  const p = path.join(outDir, rel)
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, data)
  return fs.statSync(p).size
}
function ipcFixture(rel, { format, schema, large = false, metadata, rows, batchSizes, expected, note }) {
  const aschema = arrowSchema(schema, { large }, metadata)
  const batches = makeBatches(aschema, schema, rows, batchSizes.length ? batchSizes : [], { large })
  const bytes = writeIpc(format, aschema, batches)
  const info = verify(rel, bytes, format, aschema, schema, rows, batchSizes)
  const size = put(rel, bytes)
  written.push({ rel, size, format, batchSizes, expected, note, info })
  console.log(`${rel}: ${size} bytes, ${format}, batches [${batchSizes}]`)
}
function jsonFixture(rel, text, note) {
  const size = put(rel, text)
  written.push({ rel, size, json: true, note })
  console.log(`${rel}: ${size} bytes`)
}

const sevens = n => { const out = []; for (let k = n; k > 0; k -= 7) out.push(Math.min(7, k)); return out }

ipcFixture('types.arrow', {
  format: 'stream', schema: TYPES_SCHEMA, rows: typesRows, batchSizes: sevens(40), expected: '`../parquet/types.jsonl` rows 1..40',
  note: 'the types table, Arrow IPC stream format, record batches of 7 rows; Utf8 strings and List lists (32-bit offsets), as pyarrow writes for `datasets`.',
})
ipcFixture('types-large.arrow', {
  format: 'stream', schema: TYPES_SCHEMA, large: true, rows: typesRows, batchSizes: sevens(40), expected: '`../parquet/types.jsonl` rows 1..40',
  note: 'same rows and batches as types.arrow, but LargeUtf8 for every string column/field and LargeList for every list (64-bit offsets), at every nesting level.',
})
ipcFixture('types-file.arrow', {
  format: 'file', schema: TYPES_SCHEMA, rows: typesRows, batchSizes: sevens(40), expected: '`../parquet/types.jsonl` rows 1..40',
  note: 'same table and batches as types.arrow in the IPC FILE format (ARROW1 magic, footer with the schema and one block per record batch). NOTE: apache-arrow JS writes NO Schema message after the leading magic -- the first message is the first RecordBatch and the schema is only in the footer (pyarrow writes a Schema message there, as the format spec describes; a reader that locates batches through the footer handles both); an end-of-stream marker precedes the footer.',
})
ipcFixture('types-one-batch.arrow', {
  format: 'stream', schema: TYPES_SCHEMA, rows: typesRows, batchSizes: [40], expected: '`../parquet/types.jsonl` rows 1..40',
  note: 'same table as types.arrow, stream format, all 40 rows in one record batch.',
})
ipcFixture('empty.arrow', {
  format: 'stream', schema: TYPES_SCHEMA, rows: [], batchSizes: [], expected: 'no rows (0-row table)',
  note: 'schema of types.arrow, zero record batches: a Schema message, then the end-of-stream marker.',
})

// save_to_disk-style directories. datasets writes each data file with pyarrow's
// RecordBatchStreamWriter and the schema metadata {"huggingface": json.dumps({"info": {"features": ...}})}.
const UF_META = hfSchemaMetadata(UF_SCHEMA)
const datasetInfo = () => pyIndent2({ citation: '', description: '', features: hfFeatures(UF_SCHEMA), homepage: '', license: '' })
const stateJson = (files, fingerprint, split) => pyIndent2({
  _data_files: files.map(filename => ({ filename })),
  _fingerprint: fingerprint,
  _format_columns: null,
  _format_kwargs: {},
  _format_type: null,
  _output_all_columns: false,
  _split: split,
})
const ufRange = (a, b) => ufRows.slice(a - 1, b)

ipcFixture('uf-disk/data-00000-of-00002.arrow', {
  format: 'stream', schema: UF_SCHEMA, metadata: UF_META, rows: ufRange(1, 9), batchSizes: [5, 4], expected: '`../parquet/uf.jsonl` rows 1..9',
  note: 'first shard of the uf-disk dataset: stream, 2 record batches (5, 4 rows), schema metadata `huggingface`.',
})
ipcFixture('uf-disk/data-00001-of-00002.arrow', {
  format: 'stream', schema: UF_SCHEMA, metadata: UF_META, rows: ufRange(10, 16), batchSizes: [7], expected: '`../parquet/uf.jsonl` rows 10..16',
  note: 'second shard of the uf-disk dataset: stream, 1 record batch (7 rows), schema metadata `huggingface`.',
})
jsonFixture('uf-disk/state.json', stateJson(['data-00000-of-00002.arrow', 'data-00001-of-00002.arrow'], '0123456789abcdef', null),
  'save_to_disk state: the two data files in order, `_split` null (a Dataset built in memory).')
jsonFixture('uf-disk/dataset_info.json', datasetInfo(), 'minimal DatasetInfo: citation, description, features (datasets 4.x `Features.to_dict()` form), homepage, license.')

jsonFixture('uf-dict/dataset_dict.json', pyDumps({ splits: ['train_prefs', 'test_prefs'] }),
  'DatasetDict.save_to_disk: `json.dump({"splits": list(self)}, f)` (no indent).')
ipcFixture('uf-dict/train_prefs/data-00000-of-00001.arrow', {
  format: 'stream', schema: UF_SCHEMA, metadata: UF_META, rows: ufRange(1, 12), batchSizes: [12], expected: '`../parquet/uf.jsonl` rows 1..12',
  note: 'split train_prefs: stream, 1 record batch (12 rows), schema metadata `huggingface`.',
})
jsonFixture('uf-dict/train_prefs/state.json', stateJson(['data-00000-of-00001.arrow'], '00112233445566aa', 'train_prefs'),
  'state of split train_prefs (`_split` is the split name, as for a dataset that came from load_dataset).')
jsonFixture('uf-dict/train_prefs/dataset_info.json', datasetInfo(), 'same minimal DatasetInfo as uf-disk.')
ipcFixture('uf-dict/test_prefs/data-00000-of-00001.arrow', {
  format: 'stream', schema: UF_SCHEMA, metadata: UF_META, rows: ufRange(13, 16), batchSizes: [4], expected: '`../parquet/uf.jsonl` rows 13..16',
  note: 'split test_prefs: stream, 1 record batch (4 rows), schema metadata `huggingface`.',
})
jsonFixture('uf-dict/test_prefs/state.json', stateJson(['data-00000-of-00001.arrow'], '00112233445566bb', 'test_prefs'),
  'state of split test_prefs.')
jsonFixture('uf-dict/test_prefs/dataset_info.json', datasetInfo(), 'same minimal DatasetInfo as uf-disk.')

// directory-level checks: the state.json data files exist and, concatenated, give the expected rows
function checkDir(dir, expected) {
  const st = JSON.parse(fs.readFileSync(path.join(outDir, dir, 'state.json'), 'utf8'))
  JSON.parse(fs.readFileSync(path.join(outDir, dir, 'dataset_info.json'), 'utf8'))
  const rows = []
  for (const { filename } of st._data_files) {
    const t = arrow.tableFromIPC(fs.readFileSync(path.join(outDir, dir, filename)))
    for (let i = 0; i < t.numRows; i++) rows.push(Object.fromEntries(UF_SCHEMA.map(([n, d]) => [n, normArrow(t.getChild(n).get(i), d)])))
  }
  if (rows.length !== expected.length || !rows.every((r, i) => sameJson(r, expected[i]))) throw new Error(`${dir}: rows differ`)
}
checkDir('uf-disk', ufRange(1, 16))
const dd = JSON.parse(fs.readFileSync(path.join(outDir, 'uf-dict/dataset_dict.json'), 'utf8'))
if (JSON.stringify(dd.splits) !== '["train_prefs","test_prefs"]') throw new Error('dataset_dict.json')
checkDir('uf-dict/train_prefs', ufRange(1, 12))
checkDir('uf-dict/test_prefs', ufRange(13, 16))

// ---------------------------------------------------------------- README
const L = []
L.push('# Arrow IPC reader fixtures', '')
L.push('Generated by `scripts/make_arrow_fixtures.mjs` -- do not edit by hand. Regenerate with:', '')
L.push('```sh', 'mkdir -p /tmp/pqgen && cd /tmp/pqgen && npm init -y >/dev/null && npm install apache-arrow@21.2.0 parquet-wasm@0.8.0 && \\',
  '  node /work/main/scripts/make_arrow_fixtures.mjs /work/main/tests/fixtures/arrow', '```', '')
L.push(`Every \`.arrow\` file is written by apache-arrow ${ARROW_VERSION} (the JavaScript Arrow implementation, OUTSIDE this repo): `
  + '`RecordBatchStreamWriter` for the IPC streaming format (what `datasets` `save_to_disk` writes, via pyarrow\'s `RecordBatchStreamWriter`) and `RecordBatchFileWriter` for the IPC file format. '
  + 'Metadata version V5, little-endian, no body compression, no dictionaries; every message uses the 0xFFFFFFFF continuation marker + int32 length prefix, metadata and body buffers padded to 8 bytes. '
  + 'Buffer lengths in the RecordBatch metadata are as apache-arrow records them (checked for every batch): a validity buffer has length 0 exactly when the node\'s null_count is 0 (always for the non-nullable `req`, and for every node of the uf files, which hold no nulls); '
  + 'validity bitmaps and bool value bitmaps are recorded as 64 bytes (a multiple of 64, more than ceil(length/8)); every other buffer length is rounded up to a multiple of 8 (e.g. the int32 offsets buffer of a 40-row utf8 column is 168 bytes, not 164). So buffers may be longer than the data needs, never shorter.')
L.push('Every file was read back with apache-arrow (`tableFromIPC`; `RecordBatchReader` for the batch structure) and its messages walked one by one (continuation marker, lengths, padding, message types, row counts, end-of-stream marker, and for the file format the footer blocks); '
  + `every stream file was also read by a second, independent implementation, arrow-rs (the IPC StreamReader in parquet-wasm ${PW_VERSION}, \`Table.fromIPCStream\`; it has no IPC file reader), which had to find the same record batches; `
  + 'schema, schema metadata and every value were compared with the expected rows built from the JS data; the generator aborts on any difference.', '')
L.push('## Expected rows', '')
L.push('No JSONL is duplicated here: the expected rows are the Parquet fixtures\' JSONL files, `../parquet/types.jsonl` (40 rows) and `../parquet/uf.jsonl` (16 rows), in the format described in `../parquet/README.md` (one JSON object per row, keys in column order, int64 as JSON numbers, float32 values exact in binary32, null list vs `[]`, null struct vs struct of nulls). '
  + 'The generator parses those files and builds the Arrow data from the parsed values, so each file below holds exactly the listed rows of that JSONL, in order.', '')
L.push('## Files', '')
L.push('| file | bytes | format | record batches (rows) | expected rows | what it covers |', '|---|---|---|---|---|---|')
for (const w of written) {
  if (w.json) L.push(`| \`${w.rel}\` | ${w.size} | JSON | - | - | ${w.note} |`)
  else L.push(`| \`${w.rel}\` | ${w.size} | IPC ${w.format} | ${w.batchSizes.length} (${w.batchSizes.join(',') || '-'}) | ${w.expected} | ${w.note} |`)
}
L.push('')
L.push('Directory layouts, as `datasets` writes them:', '')
L.push('- `uf-disk/` = `Dataset.save_to_disk(dir, num_shards=2)` of uf.jsonl rows 1..16: `data-00000-of-00002.arrow` (rows 1..9) + `data-00001-of-00002.arrow` (rows 10..16), `state.json` (`_data_files` lists them in order; `json.dump(state, f, indent=2, sort_keys=True)`), `dataset_info.json` (`json.dump(info, f, indent=2)`, top-level keys sorted). No trailing newline in either JSON file, as Python writes them. '
  + '(pyarrow would put a small shard in a single record batch; the first shard has two here so that a reader has to concatenate batches within a file and across files.)')
L.push('- `uf-dict/` = `DatasetDict.save_to_disk(dir)` with splits `train_prefs` (uf.jsonl rows 1..12) and `test_prefs` (rows 13..16): `dataset_dict.json` = `{"splits": ["train_prefs", "test_prefs"]}`, and one single-file save_to_disk directory per split.')
L.push('- The `.arrow` files of both directories carry the schema-level custom metadata key `huggingface` that `datasets`\' ArrowWriter adds (`json.dumps({"info": {"features": ...}})`, no fingerprint); the `types*` files and `empty.arrow` carry no schema metadata.')
L.push('- `features` (in `dataset_info.json` and in the `huggingface` metadata) use the datasets 4.x `Features.to_dict()` form: `{"dtype": "string", "_type": "Value"}`, `{"dtype": "float64", "_type": "Value"}`, and for a list `{"feature": {...}, "_type": "List"}` (datasets < 4 wrote a list of struct as `[{...}]` instead).', '')
L.push('## Schemas as written', '')
L.push('Printed from the schema read back from the written bytes (`name: type`; types with Arrow\'s names: utf8 = pyarrow `string`, large_utf8 = `large_string`, float64 = `double`, float32 = `float`; list child fields are named `item`; everything is nullable unless marked `not null`).', '')
const bySchema = new Map()
for (const w of written.filter(x => !x.json)) {
  const key = w.info.schemaLines.join('\n') + '\n' + JSON.stringify(w.info.metadata)
  if (!bySchema.has(key)) bySchema.set(key, { files: [], info: w.info })
  bySchema.get(key).files.push(w.rel)
}
for (const { files, info } of bySchema.values()) {
  L.push(`${files.map(f => `\`${f}\``).join(', ')}:`, '')
  L.push('```', ...info.schemaLines, '```', '')
  for (const [k, v] of Object.entries(info.metadata)) L.push(`schema metadata \`${k}\`:`, '', '```', v, '```', '')
}
L.push('## Message layout', '')
L.push('Byte offset, size of the encapsulated metadata (marker + length + flatbuffer + padding), body length, rows, and how many of the record batch\'s buffers have length 0.', '')
for (const w of written.filter(x => !x.json)) {
  const parts = w.info.msgs.map(m => m.kind === 'EOS' ? `EOS@${m.at}` : m.kind === 'Schema'
    ? `Schema@${m.at} (meta ${m.metaLen})`
    : `RecordBatch@${m.at} (meta ${m.metaLen}, body ${m.bodyLength}, ${m.rows} rows, ${m.buffers} buffers of which ${m.emptyBuffers} empty)`)
  let s = `- \`${w.rel}\`: ${w.format === 'file' ? 'ARROW1\\0\\0@0, ' : ''}${parts.join(', ')}`
  if (w.format === 'file') s += `, footer@${w.info.footerStart} (${w.info.footerLen} bytes; ${w.info.blocks.length} record batch blocks, 0 dictionary blocks), int32 footer length, ARROW1`
  L.push(s)
}
L.push('')
put('README.md', L.join('\n'))

let total = 0
for (const f of fs.readdirSync(outDir, { recursive: true })) {
  const p = path.join(outDir, f)
  if (fs.statSync(p).isFile()) total += fs.statSync(p).size
}
console.log(`total ${total} bytes in ${outDir}`)
