/* config.c — YAML run configuration, driven by one table of keys. See config.h.
 * The table below is the single source of truth: parsing, defaults, range checks, error messages,
 * config_to_yaml and the reference in docs/config.md (`simpo_dist --config-reference`) all read it. */
#define _GNU_SOURCE
#include "config.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "hub_cache.h"
#include "util.h"

typedef enum { K_INT, K_LONG, K_FLOAT, K_BOOL, K_STR, K_PATH, K_ENUM, K_SENUM, K_PAIR, K_MODEL } KType;

typedef struct {
    const char *key;        /* dotted name */
    KType type;
    size_t off;             /* field offset in Config */
    const char *dflt;       /* default as YAML text; NULL: no default (optional unless required) */
    double min, max;        /* inclusive range for numbers (NAN: unbounded) */
    int min_excl;           /* 1: min is exclusive */
    int max_excl;           /* 1: max is exclusive */
    const char *choices;    /* enum values separated by '|' (K_ENUM stores the index, K_SENUM the string) */
    const char *help;
} KeySpec;

#define F(field) offsetof(Config, field)
#define U NAN
static const KeySpec KEYS[] = {
    {"model.init", K_PATH, F(model_init), NULL, U, U, 0, 0, NULL,
     "Hugging Face model directory (config.json + safetensors) to start from, or a Hub name (ORG/NAME[@REVISION], "
     "e.g. meta-llama/Meta-Llama-3-8B-Instruct) found in the local Hugging Face cache (HF_HUB_CACHE, HF_HOME or "
     "~/.cache/huggingface/hub; nothing is downloaded: `huggingface-cli download` fills it); or give model.config"},
    {"model.config", K_MODEL, F(model_config), NULL, U, U, 0, 0, NULL,
     "HF config.json fields (mapping) of a randomly initialised model; or give model.init"},
    {"model.seed", K_LONG, F(model_seed), "0", 0, U, 0, 0, NULL, "seed of the random initialisation"},
    {"model.dtype", K_SENUM, F(model_dtype), "fp32", U, U, 0, 0, "fp32|bf16",
     "matmul precision: bf16 operands with fp32 sums (tensor cores on CUDA; emulated on the CPU), fp32 weights, "
     "gradients and optimizer state"},
    {"model.bf16_storage", K_SENUM, F(bf16_storage), "autocast", U, U, 0, 0, "autocast|exact",
     "model.dtype bf16: autocast keeps the q, k, v, gate and up projections and attention's output in bf16 as "
     "torch's autocast does (half their memory, numbers within bf16 rounding); exact keeps in bf16 only what the "
     "matmuls round anyway (bit for bit the numbers of fp32 storage)"},
    {"device", K_SENUM, F(device), "auto", U, U, 0, 0, "auto|cpu|cuda", "backend: auto picks cuda when built and present"},
    {"data.train", K_PATH, F(data_train), NULL, U, U, 0, 0, NULL,
     "training pairs: JSONL (token ids, chat messages or text), a JSON array of such objects, a Parquet file of the "
     "same columns (a Hub dataset's, e.g. UltraFeedback's train_prefs), a datasets save_to_disk directory or .arrow "
     "file, or an HDF5 dataset from `prepare` (required); a dataset by name, a Hub dataset in the local Hugging "
     "Face cache (ORG/NAME[@REVISION], e.g. princeton-nlp/llama3-ultrafeedback-armorm, as `huggingface-cli "
     "download --repo-type dataset` keeps it) or a directory of one (a --local-dir download, a save_to_disk "
     "DatasetDict): its split data.train_split, found as datasets' load_dataset finds it (docs/formats.md); a glob "
     "pattern (data/train-*.parquet: a split in shards) takes every match, sorted, each whole; or "
     "a mixture, a mapping of such files to fractions in (0, 1] (alignment-handbook's dataset_mixer, e.g. "
     "{uf.jsonl: 1.0, extra.jsonl: 0.25}): the first floor(fraction x pairs) pairs of each file, in file order, "
     "joined in the mapping's order (data.shuffle then mixes them)"},
    {"data.format", K_SENUM, F(data_format), "auto", U, U, 0, 0, "auto|ids|chat|text",
     "JSONL lines: token ids, chat messages (rendered with the chat template) or plain text; auto detects"},
    {"data.tokenizer", K_PATH, F(data_tokenizer), NULL, U, U, 0, 0, NULL,
     "HF tokenizer directory (tokenizer.json + tokenizer_config.json) for chat and text data, or a Hub name as "
     "model.init; default: model.init's directory where it has a tokenizer.json (as the reference trainer loads "
     "the model's tokenizer)"},
    {"data.chat_template", K_SENUM, F(chat_template), "auto", U, U, 0, 0, "auto|llama3|llama2|mistral|chatml|gemma",
     "chat template family; auto recognises tokenizer_config.json's template"},
    {"data.insert_empty_system", K_BOOL, F(insert_empty_system), "false", U, U, 0, 0, NULL,
     "alignment-handbook's auto_insert_empty_system_msg (true in the SimPO reference run script; `simpo_dist convert` "
     "writes the recipe's): a chat prompt without a system message gets an empty one first where the chat template "
     "mentions a system turn (\"system\" or \"<|im_start|>\" in its text): ChatML (an empty system turn instead of "
     "the template's default one, e.g. Qwen's), Llama 2 (an empty <<SYS>> block), a Llama 3 template that mentions "
     "one. The SimPO recipes' Mistral and Gemma templates fold an empty system message away (and the stock ones "
     "reject it): nothing changes there. false: the template's own rendering, as TRL's trainers do"},
    {"data.chat_convention", K_SENUM, F(chat_convention), "trl", U, U, 0, 0, "trl|simpo_reference",
     "how a chat pair becomes a prompt and two responses: trl, the prompt rendered with the generation prompt (the "
     "assistant header) and each response its last message's content, stripped, + the end-of-turn token (current "
     "TRL's maybe_apply_chat_template; the fixtures' convention); simpo_reference, as the SimPO repository's "
     "run_simpo.py and trainer form them: the prompt without the generation prompt, each response the template "
     "over its assistant message alone (with Llama 3 the assistant header is the response's, counted in its length "
     "and average log-prob), the tokenizer's BOS id before the prompt and its EOS id after a response where they "
     "are not there (Mistral and Gemma by the SimPO repository's own templates for them; Llama 2's refused: it "
     "rejects a lone response; docs/formats.md)"},
    {"data.prepared", K_PATH, F(data_prepared), NULL, U, U, 0, 0, NULL,
     "HDF5 dataset `simpo_dist prepare` writes (default: data.train with .h5 for its extension)"},
    {"data.eval", K_PATH, F(data_eval), NULL, U, U, 0, 0, NULL,
     "held-out pairs to evaluate during training (the reference trainer's eval split, e.g. UltraFeedback's "
     "test_prefs): the same formats and data.* settings as data.train, truncated alike; the loss and metrics of "
     "the current weights over all of them, forward only, under the run's layout, written to eval.jsonl beside "
     "metrics.jsonl with the reference trainer's eval_ names (docs/cli.md); when: train.eval_every_steps, "
     "train.eval_on_start; `simpo_dist CONFIG --eval-only` evaluates the newest checkpoint once, training nothing; "
     "a mixture too, as data.train"},
    {"data.train_split", K_STR, F(train_split), "train", U, U, 0, 0, NULL,
     "the split data.train takes from a dataset it names (a Hub name or a dataset directory; alignment-handbook's "
     "dataset_splits), e.g. train_prefs for HuggingFaceH4/ultrafeedback_binarized"},
    {"data.eval_split", K_STR, F(eval_split), "test", U, U, 0, 0, NULL,
     "the split data.eval takes from a dataset it names, e.g. test_prefs"},
    {"data.max_length", K_INT, F(max_length), "2048", 2, 1048576, 0, 0, NULL,
     "longest prompt + response in tokens; longer pairs are truncated like the SimPO reference trainer"},
    {"data.max_prompt_length", K_INT, F(max_prompt_length), "1800", 1, 1048576, 0, 0, NULL,
     "prompt tokens kept (from the end) when a pair is too long; must be < max_length"},
    {"data.shuffle", K_BOOL, F(shuffle), "true", U, U, 0, 0, NULL, "shuffle pairs each epoch (seeded by train.seed)"},
    {"data.prefix_sharing", K_BOOL, F(prefix_sharing), "true", U, U, 0, 0, NULL,
     "run each pair's prompt through the layers once for both responses (prefix sharing: under causal attention the "
     "chosen and rejected sequences' prompts have the same hidden states); attention still sees two whole "
     "sequences (read from the layers' rows where the backend can, the copies' queries skipped). The same loss and gradients up to rounding, fewer tokens per step (a quarter prompt: 12.5%)"},
    {"loss.type", K_ENUM, F(loss_type), "simpo", U, U, 0, 0,
     "simpo|simpo_hinge|dpo|cpo_simpo|ipo|rdpo|cpo|orpo|rrhf|slic|kto", "objective (docs/losses.md)"},
    {"loss.beta", K_FLOAT, F(beta), "2.0", 0, U, 1, 0, NULL, "reward scale beta"},
    {"loss.gamma_beta_ratio", K_FLOAT, F(gamma_beta_ratio), "0.5", 0, U, 0, 0, NULL,
     "SimPO target margin as a fraction of beta (gamma = beta * ratio)"},
    {"loss.sft_weight", K_FLOAT, F(sft_weight), "0.0", 0, U, 0, 0, NULL,
     "weight of the token-mean NLL of chosen responses added to the loss"},
    {"loss.label_smoothing", K_FLOAT, F(label_smoothing), "0.0", 0, 0.5, 0, 1, NULL,
     "label smoothing eps of the sigmoid losses, in [0, 0.5)"},
    {"loss.alpha", K_FLOAT, F(loss_alpha), "0.0", U, U, 0, 0, NULL, "R-DPO length-regularisation weight alpha"},
    {"loss.delta", K_FLOAT, F(loss_delta), "1.0", 0, U, 0, 0, NULL, "SLiC-HF hinge margin delta"},
    {"loss.lambda", K_FLOAT, F(loss_lambda), "1.0", 0, U, 0, 0, NULL,
     "NLL weight of cpo, rrhf, slic; weight of the odds-ratio term of orpo"},
    {"optim.lr", K_FLOAT, F(lr), "1.0e-6", 0, U, 1, 0, NULL, "peak learning rate"},
    {"optim.betas", K_PAIR, F(beta1), "[0.9, 0.999]", 0, 1, 0, 1, NULL, "AdamW [beta1, beta2], each in [0, 1)"},
    {"optim.eps", K_FLOAT, F(eps), "1.0e-8", 0, U, 1, 0, NULL, "AdamW epsilon"},
    {"optim.weight_decay", K_FLOAT, F(weight_decay), "0.0", 0, U, 0, 0, NULL,
     "decoupled weight decay (not applied to RMSNorm gains)"},
    {"optim.max_grad_norm", K_FLOAT, F(max_grad_norm), "1.0", 0, U, 0, 0, NULL,
     "global gradient-norm clipping threshold; 0 disables (then, under `train.nonfinite: stop`, the logged "
     "norm is formed as AdamW reads the gradients instead of in a pass before it: the same value, one pass "
     "over the gradients fewer)"},
    {"optim.schedule", K_ENUM, F(schedule), "cosine", U, U, 0, 0, "constant|linear|cosine|wsd",
     "learning-rate schedule after warmup; wsd: warmup-stable-decay (transformers' get_wsd_schedule, MiniCPM's), "
     "the peak lr until the last optim.decay_steps steps, then down to lr x min_lr_ratio by optim.decay_type "
     "(its warmup starts at that floor too): one run's stable phase serves several training lengths"},
    {"optim.warmup_steps", K_INT, F(warmup_steps), "0", 0, U, 0, 0, NULL, "linear warmup steps"},
    {"optim.warmup_ratio", K_FLOAT, F(warmup_ratio), "0.0", 0, 1, 0, 1, NULL,
     "warmup as a fraction of total steps (ceil), used when warmup_steps is 0"},
    {"optim.decay_steps", K_INT, F(decay_steps), "0", 0, U, 0, 0, NULL,
     "optim.schedule wsd: steps of the decay phase at the end (0: optim.decay_ratio of the total steps)"},
    {"optim.decay_ratio", K_FLOAT, F(decay_ratio), "0.1", 0, 1, 0, 0, NULL,
     "optim.schedule wsd: the decay phase as a fraction of the total steps (ceil), used when decay_steps is 0"},
    {"optim.decay_type", K_ENUM, F(decay_type), "cosine", U, U, 0, 0, "cosine|linear|1-sqrt",
     "optim.schedule wsd: the decay's shape over its progress p in [0, 1]: 0.5 (1 + cos(pi p)), 1 - p, or 1 - "
     "sqrt(p)"},
    {"optim.min_lr_ratio", K_FLOAT, F(min_lr_ratio), "0.0", 0, 1, 0, 0, NULL,
     "floor of the linear/cosine decay as a fraction of lr"},
    {"train.global_batch_pairs", K_INT, F(global_batch_pairs), "128", 1, U, 0, 0, NULL,
     "preference pairs per optimizer step (all ranks, all micro-batches)"},
    {"train.micro_batch_pairs", K_INT, F(micro_batch_pairs), "2", 1, U, 0, 0, NULL,
     "pairs per forward/backward (chosen and rejected packed together); divides global_batch_pairs"},
    {"train.micro_batch_tokens", K_INT, F(micro_batch_tokens), "0", 0, U, 0, 0, NULL,
     "micro-batches by tokens instead of pairs (verl's dynamic batch size): each data-parallel rank cuts its pairs of "
     "the step, in order, into contiguous micro-batches of at most this many tokens in the layers' layout (a pair "
     "longer than that alone), every rank into as many as the rank that needs the most, balanced, and its held-out "
     "pairs (data.eval) into the fewest; the activations are sized for the largest micro-batch the run's data order "
     "forms instead of micro_batch_pairs' longest pairs (and so does simpo_dist plan --from-data). The loss is the "
     "same (the mean over the global batch; kto's reference point is per micro-batch); 0: micro_batch_pairs pairs "
     "each"},
    {"train.max_steps", K_LONG, F(max_steps), "0", 0, U, 0, 0, NULL, "optimizer steps; 0: derive from train.epochs"},
    {"train.epochs", K_FLOAT, F(epochs), "1.0", 0, U, 1, 0, NULL, "epochs when max_steps is 0"},
    {"train.seed", K_LONG, F(seed), "0", 0, U, 0, 0, NULL, "seed of the data order"},
    {"train.eval_every_steps", K_LONG, F(eval_every_steps), "0", 0, U, 0, 0, NULL,
     "with data.eval: evaluate every this many steps and after the last one (0: after the last step only; a run "
     "stopped early by --stop-at-step or a signal evaluates at the interval's steps only)"},
    {"train.eval_on_start", K_BOOL, F(eval_on_start), "false", U, U, 0, 0, NULL,
     "with data.eval: evaluate the starting weights too, before the first step (logged as step 0; not on resume)"},
    {"train.nonfinite", K_ENUM, F(nonfinite_skip), "stop", U, U, 0, 0, "stop|skip",
     "a non-finite loss or gradient norm: stop with an error naming the tensor, or skip the update"},
    {"train.recompute", K_ENUM, F(recompute), "auto", U, U, 0, 0, "false|true|auto",
     "activation recomputation per layer: keep each layer's input only and rerun its forward in the backward "
     "(less activation memory, about a third more layer FLOPs); auto (the default): per stage the cheapest "
     "recompute that lets the memory plan fit the device (its free memory at start, less 5% and 1 GiB for op "
     "scratch; SIMPO_DEVICE_MEMORY_GIB sets the budget instead; none on the CPU, silently): none, else the MLP's "
     "activation function alone (as train.recompute_activation), else it and the normed inputs (as "
     "train.recompute_norm), else those and the fewest layers; false never recomputes"},
    {"train.recompute_layers", K_INT, F(recompute_layers), "0", 0, U, 0, 0, NULL,
     "with train.recompute: true: how many layers of each pipeline stage recompute, its first ones (Megatron's "
     "block method); 0: all. Fewer layers: more activation memory, less recompute time"},
    {"train.recompute_activation", K_BOOL, F(recompute_activation), "false", U, U, 0, 0, NULL,
     "recompute the MLP's gated activation (SwiGLU / GeGLU) in the backward from the gate and up projections it "
     "keeps, instead of keeping its output (Megatron-Core's recompute of the activation function): the MLP's hidden "
     "state less per token and layer (FF/tp values, 2 bytes each in bf16), one elementwise pass more per layer; the "
     "same numbers bit for bit"},
    {"train.recompute_norm", K_BOOL, F(recompute_norm), "false", U, U, 0, 0, NULL,
     "recompute the RMSNorm outputs that feed the attention and MLP projections (ln1, ln2) in the backward from the "
     "layer input and the residual they keep (Megatron-Core's recompute of the layernorm module): 2C values less "
     "per token and layer (2 bytes each in bf16), two norm passes more per layer; the same numbers bit for bit"},
    {"train.bf16_weight_cache", K_ENUM, F(bf16_weight_cache), "auto", U, U, 0, 0, "false|true|auto",
     "model.dtype bf16: keep a bf16 copy of the matmul weights, made once per optimizer step, instead of "
     "rounding the fp32 weights before every matmul (2 bytes per matmul weight; the same numbers bit for "
     "bit). auto: kept unless the memory budget is known (a GPU's free memory less 5% and 1 GiB, or "
     "`SIMPO_DEVICE_MEMORY_GIB`) and the plan with it, the recompute the config asks for and the whole "
     "logits cache (`train.lmhead_cache` auto or true) does not fit it; then dropped first, before "
     "`train.recompute: auto` recomputes anything and before the logits cache: it is the cheapest memory "
     "to give up (measured on an H200: ~0.3 ms of an `8b-4l` step for ~3 GiB, where the logits cache saves "
     "~6 ms per GiB; docs/performance.md). The trainer says `train.bf16_weight_cache auto: stage S "
     "on|off`, `simpo_dist plan` shows it in a column `bf16_weights`"},
    {"train.lmhead_cache", K_ENUM, F(lmhead_cache), "auto", U, U, 0, 0, "false|true|auto",
     "keep each micro-batch's LM-head logits from its forward for its backward instead of recomputing them "
     "(one of the head's four GEMMs fewer; on the last stage the largest micro-batch's log-prob rows (its "
     "response tokens) x vocab/tp logits, at 4 bytes, or 2 in `model.bf16_storage: autocast`, whose logits "
     "are bf16, laid over the layers' gradient scratch with the LM-head chunk, which a whole cache spares "
     "its own logits: it costs what that region then holds beyond the scratch, on `8b-4l` 0.47 GiB for "
     "1.47 GiB of logits; a whole cache, where it is the logits' only home, runs the head in one chunk of all "
     "the rows, one dW GEMM instead of one per chunk; the same numbers bit for bit as without the cache in "
     "chunks of as many rows, the head's gradient summed in another order than several chunks'). auto: for bf16 "
     "logits only (model.dtype bf16, "
     "autocast storage), where the memory budget is known (a GPU's free memory less 5% and 1 GiB, or "
     "SIMPO_DEVICE_MEMORY_GIB): all rows where they fit it after train.recompute's choice, else the first "
     "whole LM-head chunks that fit (a partial cache: the rest recomputed); so off on the CPU backend"},
    {"train.sparse_embedding_grad", K_ENUM, F(sparse_embed_grad), "auto", U, U, 0, 0, "false|true|auto",
     "hold the input embedding's gradient for the rows of the step's tokens only (PyTorch's "
     "`nn.Embedding(sparse=True)`), not as a dense vocab/tp x hidden fp32 tensor: 4 x vocab/tp x hidden "
     "bytes less on the first pipeline stage (2 GiB on Llama 3 8B; the held rows take at most "
     "min(vocab/tp, the step's tokens) x hidden x 4 bytes), no zeroing pass over it, and AdamW reads zeros "
     "for the other rows instead of a zeroed tensor. The same numbers bit for bit (the embedding backward "
     "sums each row's tokens in the dense order; AdamW sees the same operands; the gradient norm adds the "
     "same squares, bitwise the dense sum where one thread adds them in order and within double rounding "
     "otherwise). Needs untied embeddings (a tied embedding's gradient is the LM head's, dense in every "
     "row) and, under data parallelism, parallel.zero 0 or 1 with the first stage's embedding inside one "
     "DP shard (ZeRO-2's gradient buckets are dense ranges; a shard cutting the embedding would update it "
     "in pieces): every rank then holds the rows of the whole DP group's tokens (at most min(vocab/tp, dp x "
     "the step's tokens)) and the group sums them, an all-reduce of those rows instead of the dense tensor. "
     "auto: on where these hold (the trainer says `train.sparse_embedding_grad: on`); true: an error where "
     "they do not"},
    {"checkpoint.dir", K_PATH, F(ckpt_dir), "out", U, U, 0, 0, NULL,
     "checkpoints and metrics.jsonl; a run resumes from the newest complete checkpoint here"},
    {"checkpoint.every_steps", K_LONG, F(ckpt_every_steps), "0", 0, U, 0, 0, NULL,
     "checkpoint interval in steps (0: only at the end; the end gets one unless checkpoint.final is false)"},
    {"checkpoint.final", K_BOOL, F(ckpt_final), "true", U, U, 0, 0, NULL,
     "checkpoint after the last step (false: benchmarks and dry runs that keep no weights)"},
    {"checkpoint.keep", K_INT, F(ckpt_keep), "0", 0, U, 0, 0, NULL, "newest checkpoints to keep (0: all)"},
    {"checkpoint.check_data", K_BOOL, F(ckpt_check_data), "true", U, U, 0, 0, NULL,
     "a resumed run refuses training data other than its checkpoint's (their count and fingerprint differ: another "
     "file, a Hub snapshot replaced in the cache, another data.max_length, ...), since its data position would "
     "point into other pairs; false: resume anyway, with a warning"},
    {"checkpoint.export_hf", K_PATH, F(export_hf), NULL, U, U, 0, 0, NULL,
     "Hugging Face model directory to write from the final checkpoint when training ends (as `simpo_dist "
     "export`: config.json, safetensors, the tokenizer's files), replaced as a whole: written beside it first and "
     "renamed into place (the trainer's output_dir); needs checkpoint.final"},
    {"checkpoint.export_dtype", K_ENUM, F(export_dtype), "auto", U, U, 0, 0, "auto|fp32|bf16",
     "weights of checkpoint.export_hf: fp32 (the master weights as they are), bf16 (rounded to nearest even, half "
     "the size, as Llama checkpoints ship), or auto: model.dtype's"},
    {"log.every_steps", K_LONG, F(log_every_steps), "1", 1, U, 0, 0, NULL, "progress line and metrics interval"},
    {"log.peak_tflops", K_FLOAT, F(peak_tflops), "0", 0, U, 0, 0, NULL,
     "dense peak TFLOP/s of one rank's device in model.dtype (e.g. 989 for an H100 SXM in bf16): with it "
     "metrics.jsonl logs each step's model FLOPs utilisation `mfu` (`tflops_per_rank` over it) and the progress "
     "line its percentage; 0: not logged (`tflops_per_rank` always is: the step's model FLOPs, docs/cli.md, per "
     "second and rank)"},
    {"log.tensorboard_dir", K_PATH, F(tensorboard_dir), NULL, U, U, 0, 0, NULL,
     "directory for TensorBoard event files of the logged metrics (HF Trainer's names: train/loss, "
     "train/rewards/margins, train/learning_rate, ..., eval/loss, ...; tensorboard --logdir DIR, or wandb sync "
     "--sync-tensorboard): one file per process start, each event flushed as written; metrics.jsonl is written "
     "as always"},
    {"parallel.tp", K_INT, F(tp), "1", 1, 4096, 0, 0, NULL, "tensor-parallel ranks"},
    {"parallel.pp", K_INT, F(pp), "1", 1, 4096, 0, 0, NULL, "pipeline-parallel stages"},
    {"parallel.zero", K_INT, F(zero), "0", 0, 3, 0, 0, NULL,
     "0: replicated optimizer state; 1: shard AdamW state over DP: the moments, and in bf16 with the bf16 "
     "weight copy (`train.bf16_weight_cache`, default) the fp32 master weights too (the matmuls read the "
     "copy; the embedding and the RMSNorm gains stay whole in fp32; the log says `fp32 master weights: "
     "sharded`); 2: also gradients: each DP rank holds only its shard of the fp32 gradient, one bucket (a "
     "layer, or the embedding / LM head) and, with tied embeddings, the tied tensor's gradient "
     "(`docs/design.md`), at the price of a reduce-scatter of the gradient per micro-batch instead of one "
     "all-reduce per step; 3: also the compute weights (DeepSpeed's stage 3, FSDP): in bf16 the bf16 weight "
     "copy (train.bf16_weight_cache true or auto, which zero 3 keeps on), in fp32 the fp32 weights themselves: "
     "each DP rank keeps its shard of them, and the group all-gathers a layer's into one layer buffer before "
     "the layer's forward and again before its backward (the LM head's once per step): 2 or 4 (1 - 1/dp) "
     "bytes less per matmul weight, for twice the stage's layer weights sent per micro-batch. The same "
     "numbers as zero 2 bit for bit"},
    {"parallel.sequence_parallel", K_BOOL, F(sequence_parallel), "false", U, U, 0, 0, NULL,
     "with parallel.tp > 1 (else no effect): Megatron-Core's sequence parallelism. The layers' hidden-size "
     "rows (each layer's input, its norms and residual sums, the stage's input and output the pipeline "
     "sends) are cut over the TP ranks, ceil(tokens / tp) rows each, instead of kept whole on every one: "
     "those activations take 1/tp of their memory and the pipeline sends 1/tp of the bytes. The forward's "
     "all-reduces become a reduce-scatter and an all-gather (the same traffic); the backward gathers the "
     "normed rows again for the weight gradients (half as much traffic again as without) and sums the "
     "norm gains' gradients over TP. Same numbers within float rounding (the sums run in another order)"},
    {"parallel.zero3_prefetch", K_BOOL, F(zero3_prefetch), "true", U, U, 0, 0, NULL,
     "with parallel.zero 3 (else no effect): a second layer gather buffer (one layer's compute weights more), into "
     "which the next layer's all-gather runs, non-blocking, while the current layer computes: the forward gathers "
     "each next layer ahead, the backward each previous one (FSDP's forward and backward prefetch, DeepSpeed's "
     "stage-3 prefetch). The same gathers and bytes, the same numbers bit for bit"},
    {"parallel.overlap_grad_reduce", K_ENUM, F(overlap_grad_reduce), "auto", U, U, 0, 0, "false|true|auto",
     "with more than one data-parallel rank (ranks / (tp x pp) > 1), the gradient's data-parallel reduction beside "
     "the backward (Megatron-Core's overlap_grad_reduce, DeepSpeed's overlap_comm). Under parallel.zero 0 and 1 the "
     "all-reduce goes in units (a layer, the LM head with the final norm, an untied embedding; the rest after the "
     "backward), each started, non-blocking, the moment the step's last backward has completed it, so it runs "
     "beside the backward of the layers before it; under zero 2 and 3 each bucket's reduce-scatter (every "
     "micro-batch's) travels while the backward writes the next bucket into a second bucket buffer (one bucket, "
     "the largest, more memory). The same messages either way, so the same numbers bit for bit. auto: on under "
     "zero 0 and 1 (no memory more); under 2 and 3 where a memory budget is known (a GPU's free memory, or "
     "SIMPO_DEVICE_MEMORY_GIB) and the plan with the second buffer fits it after train.recompute and the caches "
     "(the log says `parallel.overlap_grad_reduce auto: stage S two buffers|one buffer`), else one buffer; false: "
     "every unit after the backward, every bucket's sum before the next"},
    {"parallel.backend", K_SENUM, F(comm_backend), "auto", U, U, 0, 0, "auto|mpi|nccl", "collectives backend"},
};
#define NKEYS (int)(sizeof KEYS / sizeof KEYS[0])
static const char *SECTIONS[] = {"model", "data", "loss", "optim", "train", "checkpoint", "log", "parallel"};
#define NSECTIONS (int)(sizeof SECTIONS / sizeof SECTIONS[0])

typedef struct {
    const char *file;
    const char *base_dir;
    yaml_document_t *doc;
    int seen[sizeof KEYS / sizeof KEYS[0]];
    int line[sizeof KEYS / sizeof KEYS[0]];
} Ctx;

static const char *where_at(const Ctx *x, const yaml_node_t *n, char *buf, size_t cap) {
    if (n) snprintf(buf, cap, "%s:%zu:%zu", x->file, n->start_mark.line + 1, n->start_mark.column + 1);
    else snprintf(buf, cap, "%s", x->file);
    return buf;
}

static int find_key(const char *key) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].key, key)) return i;
    return -1;
}

static const char *type_name(const KeySpec *k) {
    switch (k->type) {
    case K_INT: case K_LONG: return "integer";
    case K_FLOAT: return "float";
    case K_BOOL: return "bool";
    case K_STR: return "string";
    case K_PATH: return "path";
    case K_ENUM: case K_SENUM: return "one of";
    case K_PAIR: return "[float, float]";
    case K_MODEL: return "mapping";
    }
    return "?";
}

static void check_range(const KeySpec *k, double v, const char *where, const char *text) {
    int lo_bad = !isnan(k->min) && (k->min_excl ? v <= k->min : v < k->min);
    int hi_bad = !isnan(k->max) && (k->max_excl ? v >= k->max : v > k->max);
    if (!lo_bad && !hi_bad) return;
    char lo[64] = "", hi[64] = "";
    if (!isnan(k->min)) snprintf(lo, sizeof lo, "%s %g", k->min_excl ? ">" : ">=", k->min);
    if (!isnan(k->max)) snprintf(hi, sizeof hi, "%s%s %g", lo[0] ? " and " : "", k->max_excl ? "<" : "<=", k->max);
    sd_die(where, "key '%s': expected a value %s%s, found %s", k->key, lo, hi, text);
}

static double parse_float(const KeySpec *k, const char *s, const char *where) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) sd_die(where, "key '%s': expected a float, found \"%s\"", k->key, s);
    return v;
}

/* sets one scalar key from its YAML text */
static void set_scalar(Config *c, const KeySpec *k, const char *s, const char *where, const char *base_dir) {
    char *field = (char *)c + k->off;
    switch (k->type) {
    case K_INT:
    case K_LONG: {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (!*s || *end || errno) sd_die(where, "key '%s': expected an integer, found \"%s\"", k->key, s);
        if (k->type == K_INT && (v > 2147483647LL || v < -2147483647LL))
            sd_die(where, "key '%s': %s is too large", k->key, s);
        check_range(k, (double)v, where, s);
        if (k->type == K_INT) *(int *)field = (int)v;
        else *(long *)field = (long)v;
        break;
    }
    case K_FLOAT: {
        double v = parse_float(k, s, where);
        check_range(k, v, where, s);
        *(double *)field = v;
        break;
    }
    case K_BOOL: {
        const char *t[] = {"true", "yes", "on"}, *f[] = {"false", "no", "off"};
        int val = -1;
        for (int i = 0; i < 3; i++) {
            if (!strcasecmp(s, t[i])) val = 1;
            if (!strcasecmp(s, f[i])) val = 0;
        }
        if (val < 0) sd_die(where, "key '%s': expected true or false, found \"%s\"", k->key, s);
        *(bool *)field = val;
        break;
    }
    case K_STR:
    case K_PATH: {
        if (!*s) sd_die(where, "key '%s': expected a %s, found an empty value", k->key, type_name(k));
        char **dst = (char **)field;
        free(*dst);
        if (!strcmp(k->key, "model.init") || !strcmp(k->key, "data.tokenizer")) { /* a path or a Hub name */
            char w2[600];
            snprintf(w2, sizeof w2, "%s: key '%s'", where, k->key);
            *dst = hub_resolve(base_dir, s, HUB_MODEL, w2);
        } else *dst = k->type == K_PATH ? sd_path_join(base_dir, s) : sd_strdup(s);
        break;
    }
    case K_ENUM:
    case K_SENUM: {
        int idx = 0, found = -1;
        const char *p = k->choices;
        while (*p) {
            size_t n = strcspn(p, "|");
            if (strlen(s) == n && !strncmp(p, s, n)) found = idx;
            idx++;
            p += n + (p[n] == '|');
        }
        if (found < 0) sd_die(where, "key '%s': expected one of %s, found \"%s\"", k->key, k->choices, s);
        if (k->type == K_ENUM) *(int *)field = found;
        else {
            free(*(char **)field);
            *(char **)field = sd_strdup(s);
        }
        break;
    }
    default:
        sd_die(where, "key '%s': expected a %s", k->key, type_name(k));
    }
}

/* YAML subtree -> JSON text (for model.config) */
static cJSON *to_json(Ctx *x, yaml_node_t *n) {
    if (n->type == YAML_MAPPING_NODE) {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(x->doc, p->key), *vn = yaml_document_get_node(x->doc, p->value);
            char w[512];
            if (kn->type != YAML_SCALAR_NODE) sd_die(where_at(x, kn, w, sizeof w), "model.config: keys must be names");
            cJSON_AddItemToObject(o, (char *)kn->data.scalar.value, to_json(x, vn));
        }
        return o;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            cJSON_AddItemToArray(a, to_json(x, yaml_document_get_node(x->doc, *it)));
        return a;
    }
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!strcmp(s, "true")) return cJSON_CreateTrue();
        if (!strcmp(s, "false")) return cJSON_CreateFalse();
        if (!strcmp(s, "null") || !strcmp(s, "~") || !*s) return cJSON_CreateNull();
        char *end;
        double v = strtod(s, &end);
        if (*s && !*end) return cJSON_CreateNumber(v);
    }
    return cJSON_CreateString(s);
}

/* whether paths a and b name one file (their real paths; the strings where one does not exist) */
static bool same_file(const char *a, const char *b) {
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = ra && rb ? !strcmp(ra, rb) : !strcmp(a, b);
    free(ra);
    free(rb);
    return same;
}

/* *shown (a data key's string field) = the parts' resolved paths joined by " + " */
static void mixture_name(const DataPart *mix, int n, char **shown) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(mix[i].path) + 3;
    free(*shown);
    *shown = sd_alloc(len, "data mixture");
    (*shown)[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strcat(*shown, " + ");
        strcat(*shown, mix[i].path);
    }
}

/* A data value naming a dataset rather than a file: a Hub dataset in the cache (a name that is no path) or a
 * directory other than a save_to_disk split's. Sets *part to a part whose split the config's data.*_split picks
 * once every key is read (resolve_splits): its one "file" the directory, n_files -1. False: a file (or pattern). */
static bool dataset_part(const KeySpec *k, Ctx *x, yaml_node_t *vn, const char *v, DataPart *part) {
    static const char *file_ext[] = {".jsonl", ".json", ".parquet", ".arrow", ".h5", ".hdf5"};
    size_t n = strlen(v);
    for (size_t i = 0; i < sizeof file_ext / sizeof *file_ext; i++)
        if (n >= strlen(file_ext[i]) && !strcmp(v + n - strlen(file_ext[i]), file_ext[i])) return false;
    if (strpbrk(v, "*?[")) return false;
    char w[512], w2[600];
    snprintf(w2, sizeof w2, "%s: key '%s'", where_at(x, vn, w, sizeof w), k->key);
    char *dir = hub_resolve(x->base_dir, v, HUB_DATASET, w2);
    if (!sd_dir_exists(dir) || hub_is_split_dir(dir)) {
        free(dir);
        return false;
    }
    part->path = hub_is_repo_id(v) && strcmp(dir, v) ? sd_strdup(v) : sd_strdup(dir);
    part->files = sd_alloc(sizeof *part->files, "data files");
    part->files[0] = dir;
    part->n_files = -1;
    return true;
}

/* the splits of the data parts dataset_part left: each directory's data files of data.train_split (data.eval_split),
 * the part named "NAME split SPLIT" */
static void resolve_splits(Config *c, const Ctx *x) {
    for (int e = 0; e < 2; e++) {
        DataPart *mix = e ? c->eval_mix : c->train_mix;
        int n = e ? c->n_eval_mix : c->n_train_mix;
        const char *split = e ? c->eval_split : c->train_split, *key = e ? "data.eval" : "data.train";
        bool any = false;
        for (int i = 0; i < n; i++) {
            if (mix[i].n_files >= 0) continue;
            char w[600];
            snprintf(w, sizeof w, "%s:%d: key '%s' (split '%s', %s)", x->file, x->line[find_key(key)], key, split,
                     e ? "data.eval_split" : "data.train_split");
            char *dir = mix[i].files[0];
            free(mix[i].files);
            mix[i].files = NULL; /* the part holds nothing while the split is looked for (an error frees c) */
            mix[i].n_files = 0;
            sd_cleanup_push(free, dir);
            int nf = 0;
            char **files = hub_split_files(dir, split, &nf, w);
            sd_cleanup_pop();
            free(dir);
            mix[i].files = files;
            mix[i].n_files = nf;
            size_t len = strlen(mix[i].path) + strlen(split) + 16;
            char *name = sd_alloc(len, "data name");
            snprintf(name, len, "%s split %s", mix[i].path, split);
            free(mix[i].path);
            mix[i].path = name;
            any = true;
        }
        if (any) mixture_name(mix, n, (char **)(e ? &c->data_eval : &c->data_train));
    }
}

/* data.train / data.eval as a mapping {path: fraction, ...}: the parts in the mapping's order into *mix, and into
 * *shown (the key's string field) the resolved paths joined by " + " */
static void set_mixture(const KeySpec *k, Ctx *x, yaml_node_t *vn, DataPart **mix, int *n_mix, char **shown) {
    char w[512];
    size_t n = (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start);
    where_at(x, vn, w, sizeof w);
    if (n == 0) sd_die(w, "key '%s': expected a path, or a mapping of paths to fractions in (0, 1]; found an empty "
                          "mapping", k->key);
    *mix = sd_calloc(n, sizeof **mix, "data mixture");
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(x->doc, p->key), *fn = yaml_document_get_node(x->doc, p->value);
        where_at(x, kn, w, sizeof w);
        if (kn->type != YAML_SCALAR_NODE || !*(const char *)kn->data.scalar.value)
            sd_die(w, "key '%s': expected a file path as each mixture key", k->key);
        DataPart *d = &(*mix)[(*n_mix)++];
        if (!dataset_part(k, x, kn, (const char *)kn->data.scalar.value, d))
            d->path = sd_path_join(x->base_dir, (const char *)kn->data.scalar.value);
        for (int i = 0; i + 1 < *n_mix; i++)
            if (same_file((*mix)[i].path, d->path))
                sd_die(w, "key '%s': the file %s appears twice", k->key, (const char *)kn->data.scalar.value);
        where_at(x, fn, w, sizeof w);
        const char *s = fn->type == YAML_SCALAR_NODE ? (const char *)fn->data.scalar.value : "";
        char *end;
        d->fraction = strtod(s, &end);
        if (fn->type != YAML_SCALAR_NODE || !*s || *end || !(d->fraction > 0 && d->fraction <= 1))
            sd_die(w, "key '%s': the fraction of %s: expected a number in (0, 1] (the share of its pairs taken, "
                      "from its start), found '%s'", k->key, (const char *)kn->data.scalar.value,
                   fn->type == YAML_SCALAR_NODE ? s : "a mapping or list");
    }
    mixture_name(*mix, *n_mix, shown);
}

/* data.train / data.eval as a glob pattern (`data/train-*.parquet`: a Hub split kept in shards) naming no existing
 * file itself: every match, in sorted order, each whole (a mixture at 1.0). True when the value was a pattern. */
static bool set_glob(const KeySpec *k, Ctx *x, yaml_node_t *vn, DataPart **mix, int *n_mix, char **shown) {
    const char *v = (const char *)vn->data.scalar.value;
    if (!strpbrk(v, "*?[")) return false;
    char *pat = sd_path_join(x->base_dir, v);
    if (sd_file_exists(pat)) { /* a file whose name holds such a character */
        free(pat);
        return false;
    }
    char w[512];
    where_at(x, vn, w, sizeof w);
    glob_t g;
    int rc = glob(pat, GLOB_ERR, NULL, &g);
    free(pat);
    if (rc != 0) {
        if (rc != GLOB_NOMATCH) globfree(&g);
        sd_die(w, "key '%s': the pattern '%s' matches no file", k->key, v);
    }
    if (g.gl_pathc == 1) { /* one file: the plain path */
        free(*shown);
        *shown = sd_strdup(g.gl_pathv[0]);
        globfree(&g);
        return true;
    }
    *mix = sd_calloc(g.gl_pathc, sizeof **mix, "data mixture");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        (*mix)[i].path = sd_strdup(g.gl_pathv[i]);
        (*mix)[i].fraction = 1.0;
    }
    *n_mix = (int)g.gl_pathc;
    globfree(&g);
    mixture_name(*mix, *n_mix, shown);
    return true;
}

static void set_node(Config *c, Ctx *x, int ki, yaml_node_t *vn) {
    const KeySpec *k = &KEYS[ki];
    char w[512];
    where_at(x, vn, w, sizeof w);
    if (x->seen[ki]) sd_die(w, "key '%s' appears twice (first on line %d)", k->key, x->line[ki]);
    x->seen[ki] = 1;
    x->line[ki] = (int)vn->start_mark.line + 1;
    bool train = !strcmp(k->key, "data.train");
    if ((train || !strcmp(k->key, "data.eval")) && vn->type == YAML_MAPPING_NODE) { /* a mixture */
        set_mixture(k, x, vn, train ? &c->train_mix : &c->eval_mix, train ? &c->n_train_mix : &c->n_eval_mix,
                    (char **)((char *)c + k->off));
        return;
    }
    DataPart ds = {0};
    if ((train || !strcmp(k->key, "data.eval")) && vn->type == YAML_SCALAR_NODE &&
        dataset_part(k, x, vn, (const char *)vn->data.scalar.value, &ds)) { /* a dataset's split: one part */
        DataPart **mix = train ? &c->train_mix : &c->eval_mix;
        *mix = sd_calloc(1, sizeof **mix, "data mixture");
        ds.fraction = 1.0;
        (*mix)[0] = ds;
        *(train ? &c->n_train_mix : &c->n_eval_mix) = 1;
        mixture_name(*mix, 1, (char **)((char *)c + k->off));
        return;
    }
    if ((train || !strcmp(k->key, "data.eval")) && vn->type == YAML_SCALAR_NODE &&
        set_glob(k, x, vn, train ? &c->train_mix : &c->eval_mix, train ? &c->n_train_mix : &c->n_eval_mix,
                 (char **)((char *)c + k->off)))
        return;
    if (k->type == K_MODEL) {
        if (vn->type != YAML_MAPPING_NODE)
            sd_die(w, "key 'model.config': expected a mapping of Hugging Face config.json fields");
        cJSON *j = to_json(x, vn);
        char *js = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        sd_cleanup_push(cJSON_free, js);
        char w2[600];
        snprintf(w2, sizeof w2, "%s: model.config", w);
        c->model_config = model_config_from_json(js, w2);
        c->has_model_config = true;
        sd_cleanup_pop();
        cJSON_free(js);
        return;
    }
    if (k->type == K_PAIR) {
        if (vn->type != YAML_SEQUENCE_NODE || vn->data.sequence.items.top - vn->data.sequence.items.start != 2)
            sd_die(w, "key '%s': expected a list of two floats [b1, b2]", k->key);
        double *dst = (double *)((char *)c + k->off);
        for (int i = 0; i < 2; i++) {
            yaml_node_t *it = yaml_document_get_node(x->doc, vn->data.sequence.items.start[i]);
            where_at(x, it, w, sizeof w);
            if (it->type != YAML_SCALAR_NODE) sd_die(w, "key '%s': expected a float", k->key);
            const char *s = (const char *)it->data.scalar.value;
            dst[i] = parse_float(k, s, w);
            check_range(k, dst[i], w, s);
        }
        return;
    }
    if (vn->type != YAML_SCALAR_NODE) sd_die(w, "key '%s': expected a %s, found a %s", k->key, type_name(k),
                                             vn->type == YAML_MAPPING_NODE ? "mapping" : "list");
    set_scalar(c, k, (const char *)vn->data.scalar.value, w, x->base_dir);
}

static void set_defaults(Config *c) {
    for (int i = 0; i < NKEYS; i++) {
        const KeySpec *k = &KEYS[i];
        if (!k->dflt) continue;
        if (k->type == K_PAIR) { /* "[a, b]" */
            double *d = (double *)((char *)c + k->off);
            if (sscanf(k->dflt, "[%lf, %lf]", &d[0], &d[1]) != 2) sd_die("config table", "bad default of %s", k->key);
        } else set_scalar(c, k, k->dflt, "config table", "");
    }
}

static void validate(const Config *c, const Ctx *x) {
    char w[512];
    snprintf(w, sizeof w, "%s", x->file);
    if (!c->data_train) sd_die(w, "key 'data.train' is required (the training pairs, JSONL)");
    if (!c->model_init && !c->has_model_config) sd_die(w, "one of 'model.init' or 'model.config' is required");
    if (c->model_init && c->has_model_config)
        sd_die(w, "'model.init' and 'model.config' exclude each other (line %d and %d)", x->line[find_key("model.init")],
               x->line[find_key("model.config")]);
    if (c->max_prompt_length >= c->max_length)
        sd_die(w, "key 'data.max_prompt_length' (%d) must be smaller than data.max_length (%d)", c->max_prompt_length,
               c->max_length);
    if (c->loss_type == LOSS_CPO_SIMPO && !(c->sft_weight > 0))
        sd_die(w, "loss.type cpo_simpo is SimPO plus an NLL term: set loss.sft_weight > 0");
    if (c->global_batch_pairs % c->micro_batch_pairs)
        sd_die(w, "key 'train.micro_batch_pairs' (%d) must divide train.global_batch_pairs (%d)", c->micro_batch_pairs,
               c->global_batch_pairs);
    if (!c->data_eval && (c->eval_every_steps > 0 || c->eval_on_start))
        sd_die(w, "key 'train.%s' (line %d) says when to evaluate: it needs data.eval (the held-out pairs)",
               c->eval_every_steps > 0 ? "eval_every_steps" : "eval_on_start",
               x->line[find_key(c->eval_every_steps > 0 ? "train.eval_every_steps" : "train.eval_on_start")]);
    if (c->schedule != SCHED_WSD)
        for (const char *const *k = (const char *const[]){"optim.decay_steps", "optim.decay_ratio", "optim.decay_type",
                                                            NULL};
             *k; k++)
            if (x->seen[find_key(*k)])
                sd_die(w, "key '%s' (line %d) shapes the decay of optim.schedule wsd: it needs optim.schedule: wsd", *k,
                       x->line[find_key(*k)]);
    if (c->export_hf && !c->ckpt_final)
        sd_die(w, "key 'checkpoint.export_hf' (line %d) exports the final checkpoint: it needs checkpoint.final: true",
               x->line[find_key("checkpoint.export_hf")]);
    if (c->recompute_layers > 0 && c->recompute != RECOMPUTE_ON)
        sd_die(w, "key 'train.recompute_layers' (line %d) says how many layers recompute: it needs train.recompute: "
                  "true%s", x->line[find_key("train.recompute_layers")],
               c->recompute == RECOMPUTE_AUTO ? " (auto chooses the count itself)" : "");
}

bool config_sparse_embed(const Config *c, bool tied, int dp, bool in_one_shard) {
    return c->sparse_embed_grad != SPARSE_EMBED_OFF && !tied && (dp == 1 || (c->zero < 2 && in_one_shard));
}

int config_recompute_layers(const Config *c) {
    if (c->recompute == RECOMPUTE_OFF) return 0;
    if (c->recompute == RECOMPUTE_AUTO) return -1; /* the trainer chooses (train.c) */
    return c->recompute_layers > 0 ? c->recompute_layers : INT_MAX; /* INT_MAX: every layer (MODEL_RECOMPUTE_ALL) */
}

/* what load() owns while it reads, freed by sd_die's cleanups when the input is rejected */
typedef struct {
    Config *c;
    yaml_parser_t parser;
    yaml_document_t doc;
    int parser_up, doc_loaded;
} LoadState;
static void load_cleanup(void *arg) {
    LoadState *st = arg;
    if (st->doc_loaded) yaml_document_delete(&st->doc);
    if (st->parser_up) yaml_parser_delete(&st->parser);
    config_free(st->c);
}

static Config *load(const char *yaml_text, size_t len, const char *name, const char *base_dir) {
    LoadState st = {0};
    sd_cleanup_push(load_cleanup, &st);
    Config *c = st.c = sd_calloc(1, sizeof *c, "config");
    c->source = sd_strdup(name);
    c->text = sd_alloc(len + 1, "config text");
    memcpy(c->text, yaml_text, len);
    c->text[len] = 0;
    set_defaults(c);
    yaml_parser_initialize(&st.parser);
    st.parser_up = 1;
    yaml_parser_set_input_string(&st.parser, (const unsigned char *)c->text, len);
    if (!yaml_parser_load(&st.parser, &st.doc)) {
        char w[512];
        snprintf(w, sizeof w, "%s:%zu:%zu", name, st.parser.problem_mark.line + 1, st.parser.problem_mark.column + 1);
        sd_die(w, "invalid YAML: %s%s%s", st.parser.problem ? st.parser.problem : "syntax error",
               st.parser.context ? " " : "", st.parser.context ? st.parser.context : "");
    }
    st.doc_loaded = 1;
    Ctx x = {.file = name, .base_dir = base_dir, .doc = &st.doc};
    yaml_node_t *root = yaml_document_get_root_node(&st.doc);
    char w[512];
    if (root && root->type != YAML_MAPPING_NODE) sd_die(where_at(&x, root, w, sizeof w), "expected a mapping of sections");
    for (yaml_node_pair_t *p = root ? root->data.mapping.pairs.start : NULL; root && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&st.doc, p->key), *vn = yaml_document_get_node(&st.doc, p->value);
        if (kn->type != YAML_SCALAR_NODE) sd_die(where_at(&x, kn, w, sizeof w), "expected a section name");
        const char *sec = (const char *)kn->data.scalar.value;
        int is_section = 0;
        for (int i = 0; i < NSECTIONS; i++) is_section |= !strcmp(sec, SECTIONS[i]);
        if (!is_section) {
            int ki = find_key(sec);
            if (ki < 0) sd_die(where_at(&x, kn, w, sizeof w), "unknown key '%s' (sections: model, data, loss, optim, "
                               "train, checkpoint, log, parallel; top-level key: device)", sec);
            set_node(c, &x, ki, vn);
            continue;
        }
        if (vn->type == YAML_SCALAR_NODE && !*vn->data.scalar.value) continue; /* empty section */
        if (vn->type != YAML_MAPPING_NODE) sd_die(where_at(&x, vn, w, sizeof w), "section '%s': expected a mapping", sec);
        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
            yaml_node_t *k2 = yaml_document_get_node(&st.doc, q->key), *v2 = yaml_document_get_node(&st.doc, q->value);
            if (k2->type != YAML_SCALAR_NODE) sd_die(where_at(&x, k2, w, sizeof w), "expected a key name");
            char full[256];
            snprintf(full, sizeof full, "%s.%s", sec, (const char *)k2->data.scalar.value);
            int ki = find_key(full);
            if (ki < 0) sd_die(where_at(&x, k2, w, sizeof w), "unknown key '%s'", full);
            set_node(c, &x, ki, v2);
        }
    }
    resolve_splits(c, &x);
    if (!c->data_tokenizer && c->model_init) { /* the model's own tokenizer, as the reference trainer loads it */
        char *tj = sd_path_join(c->model_init, "tokenizer.json");
        if (sd_file_exists(tj)) c->data_tokenizer = sd_strdup(c->model_init);
        free(tj);
    }
    validate(c, &x);
    sd_cleanup_pop();
    yaml_document_delete(&st.doc);
    yaml_parser_delete(&st.parser);
    return c;
}

Config *config_load(const char *path) {
    size_t len;
    char *text = sd_read_file(path, &len);
    if (!text) sd_die(path, "cannot read the config file: %s", strerror(errno));
    sd_cleanup_push(free, text);
    char *dir = sd_path_dir(path);
    sd_cleanup_push(free, dir);
    Config *c = load(text, len, path, dir);
    sd_cleanup_pop();
    sd_cleanup_pop();
    free(dir);
    free(text);
    return c;
}

Config *config_load_string(const char *yaml, const char *name, const char *base_dir) {
    return load(yaml, strlen(yaml), name, base_dir ? base_dir : "");
}

void config_free(Config *c) {
    if (!c) return;
    for (int i = 0; i < NKEYS; i++)
        if (KEYS[i].type == K_STR || KEYS[i].type == K_PATH || KEYS[i].type == K_SENUM)
            free(*(char **)((char *)c + KEYS[i].off));
    for (int e = 0; e < 2; e++) {
        DataPart *mix = e ? c->eval_mix : c->train_mix;
        for (int i = 0, n = e ? c->n_eval_mix : c->n_train_mix; i < n; i++) {
            free(mix[i].path);
            for (int j = 0; j < (mix[i].n_files < 0 ? 1 : mix[i].n_files); j++) free(mix[i].files[j]);
            free(mix[i].files);
        }
    }
    free(c->train_mix);
    free(c->eval_mix);
    free(c->source);
    free(c->text);
    free(c);
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = *cap * 2 + (size_t)(n > 0 ? n : 0);
        *buf = sd_realloc(*buf, *cap, "yaml");
    }
}

static void quoted(char **b, size_t *l, size_t *cap, const char *s) {
    append(b, l, cap, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') append(b, l, cap, "\\%c", *s);
        else append(b, l, cap, "%c", *s);
    }
    append(b, l, cap, "\"");
}

char *config_to_yaml(const Config *c) {
    size_t cap = 4096, len = 0;
    char *b = sd_alloc(cap, "yaml");
    b[0] = 0;
    char cur[32] = "";
    for (int i = 0; i < NKEYS; i++) {
        const KeySpec *k = &KEYS[i];
        const char *dot = strchr(k->key, '.');
        const char *name = dot ? dot + 1 : k->key;
        const char *field = (const char *)c + k->off;
        char sec[32] = "";
        if (dot) snprintf(sec, sizeof sec, "%.*s", (int)(dot - k->key), k->key);
        if (k->type == K_MODEL && !c->has_model_config) continue;
        if ((k->type == K_PATH || k->type == K_STR) && !*(char *const *)field) continue;
        if (!strncmp(k->key, "optim.decay_", 12) && c->schedule != SCHED_WSD) continue; /* wsd's alone */
        if (strcmp(sec, cur)) { /* sections are contiguous in the table */
            if (sec[0]) append(&b, &len, &cap, "%s:\n", sec);
            snprintf(cur, sizeof cur, "%s", sec);
        }
        append(&b, &len, &cap, "%s%s: ", sec[0] ? "  " : "", name);
        const DataPart *mix = !strcmp(k->key, "data.train") ? c->train_mix : !strcmp(k->key, "data.eval") ? c->eval_mix
                                                                                                          : NULL;
        if (mix) { /* a mixture: {"path": fraction, ...} */
            int n = mix == c->train_mix ? c->n_train_mix : c->n_eval_mix;
            append(&b, &len, &cap, "{");
            for (int j = 0; j < n; j++) {
                if (j) append(&b, &len, &cap, ", ");
                quoted(&b, &len, &cap, mix[j].path);
                append(&b, &len, &cap, ": %.17g", mix[j].fraction);
            }
            append(&b, &len, &cap, "}\n");
            continue;
        }
        switch (k->type) {
        case K_INT: append(&b, &len, &cap, "%d\n", *(const int *)field); break;
        case K_LONG: append(&b, &len, &cap, "%ld\n", *(const long *)field); break;
        case K_FLOAT: append(&b, &len, &cap, "%.17g\n", *(const double *)field); break;
        case K_BOOL: append(&b, &len, &cap, "%s\n", *(const bool *)field ? "true" : "false"); break;
        case K_STR: case K_PATH: case K_SENUM:
            quoted(&b, &len, &cap, *(char *const *)field);
            append(&b, &len, &cap, "\n");
            break;
        case K_ENUM: {
            int idx = *(const int *)field;
            const char *p = k->choices;
            for (int j = 0; j < idx; j++) p += strcspn(p, "|") + 1;
            append(&b, &len, &cap, "%.*s\n", (int)strcspn(p, "|"), p);
            break;
        }
        case K_PAIR: append(&b, &len, &cap, "[%.17g, %.17g]\n", ((const double *)field)[0], ((const double *)field)[1]); break;
        case K_MODEL: {
            char *js = model_config_to_json(&c->model_config);
            cJSON *j = cJSON_Parse(js);
            char *one = cJSON_PrintUnformatted(j);
            append(&b, &len, &cap, "%s\n", one);
            cJSON_free(one);
            cJSON_Delete(j);
            free(js);
            break;
        }
        }
    }
    return b;
}

void config_print_reference(void) {
    printf("| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < NKEYS; i++) {
        const KeySpec *k = &KEYS[i];
        char range[96] = "";
        if (k->choices) snprintf(range, sizeof range, "%s", k->choices);
        else if (!isnan(k->min) || !isnan(k->max)) {
            char lo[40] = "", hi[40] = "";
            if (!isnan(k->min)) snprintf(lo, sizeof lo, "%s %g", k->min_excl ? ">" : ">=", k->min);
            if (!isnan(k->max)) snprintf(hi, sizeof hi, "%s%s %g", lo[0] ? ", " : "", k->max_excl ? "<" : "<=", k->max);
            snprintf(range, sizeof range, "%s%s", lo, hi);
        }
        printf("| `%s` | %s | %s | %s | %s |\n", k->key, k->type == K_ENUM || k->type == K_SENUM ? "enum" : type_name(k),
               k->dflt ? k->dflt : (strcmp(k->key, "data.train") ? "—" : "required"), range, k->help);
    }
}
