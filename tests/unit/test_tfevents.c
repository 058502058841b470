/* test_tfevents.c — src/tfevents.c: CRC-32C against RFC 3720's test vectors (and the common "123456789" check value),
 * one event's bytes against the encoding worked out by hand from event.proto and summary.proto, and a file's
 * records: the file_version record first, each record framed and checksummed as TFRecord specifies. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>
#include "tfevents.h"
#include "test_util.h"

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int main(void) {
    /* RFC 3720 B.4: 32 bytes of zeros, of ones, ascending 0..31; and "123456789" */
    unsigned char z[32], o[32], a[32];
    for (int i = 0; i < 32; i++) z[i] = 0, o[i] = 0xFF, a[i] = (unsigned char)i;
    CHECK(tf_crc32c(z, 32) == 0x8A9136AAu, "crc32c(32 x 00) = %08x", tf_crc32c(z, 32));
    CHECK(tf_crc32c(o, 32) == 0x62A8AB43u, "crc32c(32 x ff) = %08x", tf_crc32c(o, 32));
    CHECK(tf_crc32c(a, 32) == 0x46DD794Eu, "crc32c(00..1f) = %08x", tf_crc32c(a, 32));
    CHECK(tf_crc32c("123456789", 9) == 0xE3069283u, "crc32c(123456789) = %08x", tf_crc32c("123456789", 9));
    uint32_t c = tf_crc32c("123456789", 9);
    CHECK(tf_masked_crc("123456789", 9) == (((c >> 15) | (c << 17)) + 0xA282EAD8u), "masked crc");

    char tmpl[] = "/tmp/simpo_tfev_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL, "temporary directory");
    char *sub = sd_path_join(dir, "runs/a"); /* created by tf_open */
    TfWriter *w = tf_open(sub);
    const char *tags[] = {"a"};
    const double one = 1.0;
    tf_scalars(w, 3, 1.5, tags, &one, 1);
    const char *path = tf_path(w);
    CHECK(strstr(path, "/runs/a/events.out.tfevents.") && strstr(path, ".simpo_dist"), "file name %s", path);
    size_t n;
    tf_close(w);
    w = NULL;
    DIR *d = opendir(sub);
    char *file = NULL;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) file = sd_path_join(sub, e->d_name);
    if (d) closedir(d);
    CHECK(file != NULL, "the event file exists");
    unsigned char *p = file ? (unsigned char *)sd_read_file(file, &n) : NULL;
    CHECK(p != NULL, "event file readable");
    if (p) {
        /* record 1: Event {wall_time (field 1, fixed64), step 0 (field 2, varint), file_version "brain.Event:2"} */
        uint64_t len1 = le(p, 8);
        CHECK(len1 == 9 + 2 + 2 + 13, "first record: %llu bytes", (unsigned long long)len1);
        CHECK((uint32_t)le(p + 8, 4) == tf_masked_crc(p, 8), "first record: length checksum");
        CHECK(p[12] == 0x09 && p[21] == 0x10 && p[22] == 0x00 && p[23] == 0x1A && p[24] == 13 &&
                  !memcmp(p + 25, "brain.Event:2", 13), "first record: wall_time, step 0, file_version");
        CHECK((uint32_t)le(p + 12 + len1, 4) == tf_masked_crc(p + 12, (size_t)len1), "first record: data checksum");
        /* record 2: the scalar event, byte for byte (derived by hand):
         *   Event:   09 <1.5 as a little-endian double> 10 03 2A 0A <Summary: 10 bytes>
         *   Summary: 0A 08 <Value: 8 bytes>
         *   Value:   0A 01 'a' 15 <1.0f little-endian: 00 00 80 3F> */
        static const unsigned char want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0x03, 0x2A, 0x0A, 0x0A, 0x08,
                                             0x0A, 0x01, 'a', 0x15, 0x00, 0x00, 0x80, 0x3F};
        size_t at = 12 + (size_t)len1 + 4;
        CHECK(n == at + 12 + sizeof want + 4, "file of %zu bytes, want %zu", n, at + 12 + sizeof want + 4);
        if (n == at + 12 + sizeof want + 4) {
            CHECK(le(p + at, 8) == sizeof want, "second record's length");
            CHECK((uint32_t)le(p + at + 8, 4) == tf_masked_crc(p + at, 8), "second record: length checksum");
            CHECK(!memcmp(p + at + 12, want, sizeof want), "the scalar event's bytes");
            CHECK((uint32_t)le(p + at + 12 + sizeof want, 4) == tf_masked_crc(want, sizeof want),
                  "second record: data checksum");
        }
        free(p);
    }
    if (file) remove(file);
    rmdir(sub);
    char *runs = sd_path_join(dir, "runs");
    rmdir(runs);
    rmdir(dir);
    free(runs);
    free(file);
    free(sub);
    TEST_END();
}
