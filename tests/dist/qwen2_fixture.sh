# Qwen2 (tiny-q2) under mpirun: every layout against the fixture (tests/dist/qwen_fixture.bash says what is checked)
QWEN_FIXTURE=tiny-q2 QWEN_ARCH=qwen2
source "$(dirname "$0")/qwen_fixture.bash"
