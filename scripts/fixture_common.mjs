// What scripts/make_parquet_fixtures.mjs and scripts/make_arrow_fixtures.mjs share: loading the
// npm packages from the CURRENT directory's node_modules (see either script's header for the
// install line; both run from the same /tmp/pqgen), the tiny schema language the fixtures are
// described in (type descriptors, the `types` and `uf` table schemas), the Arrow types and record
// batches built from it, the expected-value checks and the read-back comparison.
// Not a script of its own: both generators import it (`./fixture_common.mjs`, next to them).

import { createRequire } from 'node:module'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// ---------------------------------------------------------------- package loading
export const req = createRequire(path.join(process.cwd(), '/'))
export async function load(spec) {
  let p = req.resolve(spec)
  if (spec === 'apache-arrow') p = p.replace(/Arrow\.node\.js$/, 'Arrow.node.mjs')
  return import(pathToFileURL(p).href)
}
// the version in the package's own package.json (walked up to from its entry point: not every
// package lists package.json in its "exports")
export function pkgVersion(name) {
  let dir = path.dirname(req.resolve(name))
  for (;;) {
    const pj = path.join(dir, 'package.json')
    if (fs.existsSync(pj)) {
      const j = JSON.parse(fs.readFileSync(pj, 'utf8'))
      if (j.name === name) return j.version
    }
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`no package.json for ${name}`)
    dir = up
  }
}
export const arrow = await load('apache-arrow')

// ---------------------------------------------------------------- type descriptors
// A tiny schema language used to build the Arrow types, the hyparquet-writer schema,
// the JS -> writer value conversion and the reader -> JSON normalisation.
export const utf8 = (nullable = true) => ({ t: 'utf8', nullable })
export const i32 = (nullable = true) => ({ t: 'i32', nullable })
export const i64 = (nullable = true) => ({ t: 'i64', nullable })
export const f64 = (nullable = true) => ({ t: 'f64', nullable })
export const f32 = (nullable = true) => ({ t: 'f32', nullable })
export const bool = (nullable = true) => ({ t: 'bool', nullable })
export const list = (of, nullable = true) => ({ t: 'list', of, nullable })
export const struct = (fields, nullable = true) => ({ t: 'struct', fields, nullable })
export const msgT = (nullable = true) => struct([['content', utf8()], ['role', utf8()]], nullable)
// a Parquet MAP as the C reader renders it: {"key_value": [{"key": k, "value": v}, ...]}
// (only used for expected rows and read-back normalisation, never given to arrowType/hySchema)
export const kvmap = (key, value, nullable = true) => ({ t: 'kvmap', key, value, nullable })
// Arrow list child field name: Arrow's own convention, and what pyarrow (and so `datasets`) writes
export const LIST_ITEM = 'item'

// ---------------------------------------------------------------- the `types` and `uf` tables
// (the Parquet fixtures build their rows; the Arrow fixtures read them back from types.jsonl / uf.jsonl)
export const TYPES_SCHEMA = [
  ['s', utf8()],
  ['i32', i32()],
  ['i64', i64()],
  ['f64', f64()],
  ['f32', f32()],
  ['b', bool()],
  ['li', list(i32())],
  ['ls', list(utf8())],
  ['st', struct([['a', i32()], ['b', utf8()]])],
  ['msgs', list(msgT())],
  ['ll', list(list(i64()))],
  ['req', i64(false)],
]
// UltraFeedback-binarized shape
export const UF_SCHEMA = [
  ['prompt', utf8()], ['prompt_id', utf8()],
  ['chosen', list(msgT())], ['rejected', list(msgT())], ['messages', list(msgT())],
  ['score_chosen', f64()], ['score_rejected', f64()],
]

// ---------------------------------------------------------------- Arrow types and data
// itemName: the list child field name, at every level; large = true: LargeUtf8 for every
// string, LargeList for every list (at every level)
export function arrowType(d, { itemName = LIST_ITEM, large = false } = {}) {
  switch (d.t) {
    case 'utf8': return large ? new arrow.LargeUtf8() : new arrow.Utf8()
    case 'i32': return new arrow.Int32()
    case 'i64': return new arrow.Int64()
    case 'f64': return new arrow.Float64()
    case 'f32': return new arrow.Float32()
    case 'bool': return new arrow.Bool()
    case 'list': {
      const child = new arrow.Field(itemName, arrowType(d.of, { itemName, large }), d.of.nullable)
      return large ? new arrow.LargeList(child) : new arrow.List(child)
    }
    case 'struct': return new arrow.Struct(d.fields.map(([n, fd]) => new arrow.Field(n, arrowType(fd, { itemName, large }), fd.nullable)))
  }
  throw new Error(d.t)
}
// opts: as for arrowType; metadata: the schema-level custom metadata (a Map) or undefined
export function arrowSchema(schema, opts, metadata) {
  return new arrow.Schema(schema.map(([n, d]) => new arrow.Field(n, arrowType(d, opts), d.nullable)), metadata)
}
// one record batch of the expected rows, each column a single chunk; aschema = arrowSchema(schema, opts, ...)
export function makeBatch(aschema, schema, rows, opts) {
  const children = schema.map(([n, d]) => {
    const vec = arrow.vectorFromArray(rows.map(r => toWriterValue(r[n], d)), arrowType(d, opts))
    if (vec.data.length !== 1) throw new Error('expected a single chunk')
    return vec.data[0]
  })
  const data = arrow.makeData({ type: new arrow.Struct(aschema.fields), length: rows.length, nullCount: 0, children })
  return new arrow.RecordBatch(aschema, data)
}

// ---------------------------------------------------------------- expected values
// expected-JSON value -> value accepted by the writers and vectorFromArray (int64 -> BigInt)
export function toWriterValue(v, d) {
  if (v === null) return null
  switch (d.t) {
    case 'i64': return BigInt(v)
    case 'list': return v.map(x => toWriterValue(x, d.of))
    case 'struct': return Object.fromEntries(d.fields.map(([n, fd]) => [n, toWriterValue(v[n], fd)]))
    default: return v
  }
}

// checks that the expected data matches the declared schema exactly
export function validate(v, d, where) {
  const bad = msg => { throw new Error(`bad expected value at ${where}: ${msg}: ${JSON.stringify(v)}`) }
  if (v === null) { if (!d.nullable) bad('null in non-nullable'); return }
  switch (d.t) {
    case 'utf8': if (typeof v !== 'string') bad('not string'); return
    case 'bool': if (typeof v !== 'boolean') bad('not bool'); return
    case 'i32': if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) bad('not int32'); return
    case 'i64': if (!Number.isSafeInteger(v)) bad('not safe int64'); return
    case 'f64': if (typeof v !== 'number' || !Number.isFinite(v) || Object.is(v, -0)) bad('not finite f64'); return
    case 'f32': if (typeof v !== 'number' || Math.fround(v) !== v || !Number.isFinite(v) || Object.is(v, -0)) bad('not exact f32'); return
    case 'list': if (!Array.isArray(v)) bad('not array'); v.forEach((x, i) => validate(x, d.of, `${where}[${i}]`)); return
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) bad('not object')
      const keys = Object.keys(v), want = d.fields.map(f => f[0])
      if (JSON.stringify(keys) !== JSON.stringify(want)) bad(`keys ${keys} != ${want}`)
      d.fields.forEach(([n, fd]) => validate(v[n], fd, `${where}.${n}`))
      return
    }
    case 'kvmap': {
      if (typeof v !== 'object' || Array.isArray(v) || JSON.stringify(Object.keys(v)) !== '["key_value"]' || !Array.isArray(v.key_value)) bad('not {key_value: [...]}')
      v.key_value.forEach((kv, i) => validate(kv, struct([['key', d.key], ['value', d.value]], false), `${where}.key_value[${i}]`))
      return
    }
  }
  throw new Error(d.t)
}

// ---------------------------------------------------------------- read-back comparison
// int64 read back -> JSON number (bigintOnly: it must be a BigInt, as apache-arrow returns it)
export function bigToNum(v, bigintOnly = false) {
  if (bigintOnly && typeof v !== 'bigint') throw new Error(`int64 read back as ${typeof v}`)
  const n = Number(v)
  if (typeof v === 'bigint' && BigInt(n) !== v) throw new Error(`int64 ${v} not exactly representable`)
  return n
}
// apache-arrow value -> canonical JSON value (bigintOnly: as for bigToNum)
export function normArrow(v, d, bigintOnly = false) {
  if (v === null || v === undefined) return null
  switch (d.t) {
    case 'i64': return bigToNum(v, bigintOnly)
    case 'list': { const out = []; for (let j = 0; j < v.length; j++) out.push(normArrow(v.get(j), d.of, bigintOnly)); return out }
    case 'struct': return Object.fromEntries(d.fields.map(([n, fd]) => [n, normArrow(v[n], fd, bigintOnly)]))
    case 'kvmap': return { key_value: Array.from(v, ([k, x]) => ({ key: normArrow(k, d.key, bigintOnly), value: normArrow(x, d.value, bigintOnly) })) } // MapRow
    default: return v
  }
}
export function sameJson(a, b) {
  if (a === null || b === null) return a === b
  if (typeof a !== typeof b) return false
  if (typeof a === 'number') return Object.is(a, b)
  if (typeof a !== 'object') return a === b
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
  const ka = Object.keys(a), kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameJson(a[k], b[k]))
}
