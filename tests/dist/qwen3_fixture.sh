# Qwen3 (tiny-q3) under mpirun: every layout against the fixture (tests/dist/qwen_fixture.bash says what is checked)
QWEN_FIXTURE=tiny-q3 QWEN_ARCH=qwen3
source "$(dirname "$0")/qwen_fixture.bash"
