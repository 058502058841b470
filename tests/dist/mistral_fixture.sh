# Mistral v0.1 (tiny-m1: Llama with a sliding window of 8 positions on every layer, which the pairs' sequences of
# 19-24 tokens pass) under mpirun: every layout against the fixture (tests/dist/qwen_fixture.bash says what is
# checked), so the window is applied as transformers' MistralForCausalLM applies it
QWEN_FIXTURE=tiny-m1 QWEN_ARCH=mistral
source "$(dirname "$0")/qwen_fixture.bash"
