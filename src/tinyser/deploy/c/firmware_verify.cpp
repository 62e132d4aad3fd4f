// tinyser firmware verification harness, for QEMU mps2-an386 with semihosting
// (written by `tinyser deploy firmware`; see tinyser.deploy.firmware).
//
// Reads tinyser_in.bin from the emulator's working folder:
//   "TSIN", u32 windows, u32 clips, then `windows` int8 model inputs
//   (TINYSER_N_FRAMES x TINYSER_N_MFCC each), then per clip u32 n and n int16
//   samples at TINYSER_SAMPLE_RATE.
// Prints one line per fact on stdout (parsed by tinyser.deploy.firmware):
//   BEGIN ticks | ARENA used size | W i ticks out... | OP i tag ticks |
//   CLIP i samples ticks inferences stack plain-pushes plain-samples plain-ticks scored-ticks |
//   R i k frames label score-bits... input-hex | STACK bytes | DONE
// Times are ticks of the board's CMSDK APB timer 0 (25 MHz); under QEMU
// -icount shift=0 one guest instruction takes 1 ns, so a tick is 40 instructions.
//
// The product is what tinyser_runtime.cpp runs (tinyser_begin, tinyser_push);
// the harness's own interpreter (model-only parity and the per-op profile), its
// buffers and heap live in TESTRAM, outside the board's memory.
#include <stdio.h>
#include <string.h>

#include "model_data.h"
#include "model_ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tinyser_runtime.h"

extern "C" void tinyser_stack_paint(void);
extern "C" uint32_t tinyser_stack_high_water(void);

#define TESTRAM __attribute__((section(".testbss")))
#ifndef TINYSER_MAX_CLIP_SAMPLES
#define TINYSER_MAX_CLIP_SAMPLES (30 * TINYSER_SAMPLE_RATE)
#endif
#if defined(TINYSER_N_FEATURES)
#define INPUT_BYTES (TINYSER_N_FRAMES * TINYSER_N_FEATURES)
#else
#define INPUT_BYTES (TINYSER_N_FRAMES * TINYSER_N_MFCC)
#endif

namespace {

volatile uint32_t *const timer0 = reinterpret_cast<volatile uint32_t *>(0x40000000);  // CTRL, VALUE, RELOAD

void timer_start() {
  timer0[0] = 0;
  timer0[2] = 0xFFFFFFFFu;
  timer0[1] = 0xFFFFFFFFu;
  timer0[0] = 1;
}

inline uint32_t ticks() { return 0xFFFFFFFFu - timer0[1]; }  // counts down from the reload value

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static const uint32_t kMax = 256;
  uint32_t BeginEvent(const char *tag) override {
    if (count_ >= kMax) return kMax;
    tags_[count_] = tag;
    begin_[count_] = ticks();
    return count_++;
  }
  void EndEvent(uint32_t handle) override {
    if (handle < kMax) end_[handle] = ticks();
  }
  void Clear() { count_ = 0; }
  void Print() const {
    for (uint32_t i = 0; i < count_; i++) printf("OP %lu %s %lu\n", (unsigned long)i, tags_[i],
                                                 (unsigned long)(end_[i] - begin_[i]));
  }

 private:
  const char *tags_[kMax];
  uint32_t begin_[kMax], end_[kMax], count_ = 0;
};

TESTRAM alignas(16) uint8_t harness_arena[TINYSER_ARENA_SIZE];
TESTRAM int16_t clip[TINYSER_MAX_CLIP_SAMPLES];
TESTRAM int8_t window_in[INPUT_BYTES];
TESTRAM char hex[2 * INPUT_BYTES + 1];
#define MAX_RESULTS (TINYSER_MAX_CLIP_SAMPLES / (TINYSER_HOP_LENGTH * TINYSER_INFERENCE_HOP_FRAMES) + 2)
TESTRAM tinyser_result_t results[MAX_RESULTS];
TESTRAM uint32_t frames_at[MAX_RESULTS];
TESTRAM int8_t inputs[(size_t)MAX_RESULTS * INPUT_BYTES];
TESTRAM OpProfiler profiler;

// Each model input, as tinyser_runtime.cpp hands it over just before Invoke (TINYSER_INPUT_HOOK).
TESTRAM int8_t last_input[INPUT_BYTES];

uint32_t read_u32(FILE *f, bool *ok) {
  uint32_t v = 0;
  if (fread(&v, sizeof v, 1, f) != 1) *ok = false;
  return v;
}

int fail(const char *what) {
  printf("ERROR %s\n", what);
  return 1;
}

uint32_t bits(float v) {
  uint32_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

}  // namespace

extern "C" void tinyser_harness_input(const int8_t *input) { memcpy(last_input, input, INPUT_BYTES); }

int main() {
  timer_start();
  uint32_t t0 = ticks();
  const char *error = tinyser_begin();
  uint32_t t1 = ticks();
  if (error != nullptr) return fail(error);
  printf("BEGIN %lu\n", (unsigned long)(t1 - t0));

  FILE *in = fopen("tinyser_in.bin", "rb");
  if (in == nullptr) return fail("cannot open tinyser_in.bin");
  char magic[4];
  bool ok = fread(magic, 1, 4, in) == 4 && memcmp(magic, "TSIN", 4) == 0;
  uint32_t n_windows = read_u32(in, &ok), n_clips = read_u32(in, &ok);
  if (!ok) return fail("tinyser_in.bin: bad header");

  // Model alone: the host's input windows through a second interpreter (same model, kernels, arena size).
  TESTRAM static TinyserOpResolver resolver;
  if (RegisterTinyserOps(resolver) != kTfLiteOk) return fail("RegisterTinyserOps");
  TESTRAM static tflite::MicroInterpreter probe(tflite::GetModel(g_model), resolver, harness_arena, TINYSER_ARENA_SIZE,
                                        nullptr, &profiler);
  if (probe.AllocateTensors() != kTfLiteOk) return fail("AllocateTensors (harness)");
  printf("ARENA %lu %lu\n", (unsigned long)probe.arena_used_bytes(), (unsigned long)TINYSER_ARENA_SIZE);
  for (uint32_t w = 0; w < n_windows; w++) {
    if (fread(window_in, 1, INPUT_BYTES, in) != INPUT_BYTES) return fail("tinyser_in.bin: short window");
    memcpy(probe.input(0)->data.int8, window_in, INPUT_BYTES);
    profiler.Clear();
    t0 = ticks();
    TfLiteStatus status = probe.Invoke();
    t1 = ticks();
    if (status != kTfLiteOk) return fail("Invoke (harness)");
    printf("W %lu %lu", (unsigned long)w, (unsigned long)(t1 - t0));
    for (int c = 0; c < TINYSER_N_CLASSES; c++) printf(" %d", probe.output(0)->data.int8[c]);
    printf("\n");
    if (w == 0) profiler.Print();
  }

  // The product: raw audio through tinyser_push (frontend, window, model), one clip at a time, in blocks
  // of TINYSER_HOP_LENGTH samples (a frame per block once the first frame is in). Each classification is
  // printed with the number of frames heard so far and the model input it saw. Pushes without a
  // classification time the frontend; pushes with one add the window and the model.
  uint32_t stack = 0;
  for (uint32_t c = 0; c < n_clips; c++) {
    uint32_t n = read_u32(in, &ok);
    if (!ok || n > TINYSER_MAX_CLIP_SAMPLES) return fail("tinyser_in.bin: bad clip length");
    if (fread(clip, sizeof(int16_t), n, in) != n) return fail("tinyser_in.bin: short clip");
    uint32_t count = 0, plain_ticks = 0, plain_pushes = 0, plain_samples = 0, scored_ticks = 0, total = 0;
    tinyser_reset();
    tinyser_stack_paint();
    for (uint32_t i = 0; i < n; i += TINYSER_HOP_LENGTH) {
      uint32_t block = n - i < TINYSER_HOP_LENGTH ? n - i : TINYSER_HOP_LENGTH;
      t0 = ticks();
      if (count == MAX_RESULTS) return fail("more classifications in a clip than the harness keeps");
      bool scored = tinyser_push(clip + i, block, &results[count]);
      t1 = ticks();
      total += t1 - t0;
      if (scored) {
        scored_ticks += t1 - t0;
        uint32_t heard = i + block;
        frames_at[count] = heard < TINYSER_FRAME_LENGTH ? 0 : (heard - TINYSER_FRAME_LENGTH) / TINYSER_HOP_LENGTH + 1;
        memcpy(inputs + (size_t)count * INPUT_BYTES, last_input, INPUT_BYTES);
        count++;
      } else {
        plain_ticks += t1 - t0;
        plain_pushes++;
        plain_samples += block;
      }
    }
    uint32_t high = tinyser_stack_high_water();
    if (high > stack) stack = high;
    printf("CLIP %lu %lu %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)c, (unsigned long)n, (unsigned long)total,
           (unsigned long)count, (unsigned long)high, (unsigned long)plain_pushes, (unsigned long)plain_samples,
           (unsigned long)plain_ticks, (unsigned long)scored_ticks);
    static const char digits[] = "0123456789abcdef";
    for (uint32_t k = 0; k < count; k++) {
      printf("R %lu %lu %lu %d", (unsigned long)c, (unsigned long)k, (unsigned long)frames_at[k], results[k].label);
      for (int j = 0; j < TINYSER_N_CLASSES; j++) printf(" %08lx", (unsigned long)bits(results[k].scores[j]));
      const int8_t *x = inputs + (size_t)k * INPUT_BYTES;
      for (uint32_t b = 0; b < INPUT_BYTES; b++) {
        hex[2 * b] = digits[(uint8_t)x[b] >> 4];
        hex[2 * b + 1] = digits[(uint8_t)x[b] & 15];
      }
      hex[2 * INPUT_BYTES] = 0;
      printf(" %s\n", hex);
    }
  }
  fclose(in);
  printf("STACK %lu\nDONE\n", (unsigned long)stack);
  return 0;
}
