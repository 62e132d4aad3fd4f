/* tinyser firmware: reset handler and vector table for a Cortex-M4F, as QEMU's
 * mps2-an386 boots it (vector table at address 0). Written by tinyser for
 * `tinyser deploy firmware`; not part of the product on a real board, whose
 * core (Arduino Mbed OS, a vendor SDK) brings its own startup. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start__, __bss_end__;
extern uint32_t __stack_bottom, __stack_top;
extern int main(void);
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void); /* newlib librdimon: semihosting I/O */

#define STACK_PAINT 0xC5C5C5C5u

static uint32_t *current_sp(void) {
  uint32_t *sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

/* Fill the unused stack (below the caller's frame) with a known word. */
void tinyser_stack_paint(void) {
  uint32_t *p = &__stack_bottom, *end = current_sp() - 32;
  while (p < end) *p++ = STACK_PAINT;
}

/* Bytes of the stack ever written since the last paint (the high-water mark). */
uint32_t tinyser_stack_high_water(void) {
  const uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == STACK_PAINT) p++;
  return (uint32_t)((const char *)&__stack_top - (const char *)p);
}

/* The harness's heap (newlib stdio buffers) lives in emulator-only memory above
 * the board's RAM, so it does not count against the product. */
extern char __test_heap_start, __test_heap_end;
void *_sbrk(int incr) {
  static char *brk = &__test_heap_start;
  char *old = brk;
  if (incr < 0 || brk + incr > &__test_heap_end) return (void *)-1;
  brk += incr;
  return old;
}

void _init(void) {}
void _fini(void) {}

void tinyser_reset_handler(void) {
  uint32_t *src = &__data_load, *dst = &__data_start;
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: enable CP10/CP11, the FPU */
  __asm volatile("dsb\n\tisb");
  while (dst < &__data_end) *dst++ = *src++;
  for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  tinyser_stack_paint();
  __libc_init_array();
  initialise_monitor_handles();
  exit(main());
}

static void tinyser_fault_handler(void) {
  /* semihosting SYS_WRITE0 (0x04) of a fixed message, then stop */
  static const char message[] = "FAULT hard fault or unhandled exception\n";
  register uint32_t op __asm("r0") = 0x04;
  register const char *arg __asm("r1") = message;
  __asm volatile("bkpt 0xab" : : "r"(op), "r"(arg) : "memory");
  exit(3);
}

typedef void (*tinyser_vector_t)(void);
__attribute__((section(".vectors"), used)) const tinyser_vector_t tinyser_vectors[16] = {
    (tinyser_vector_t)(uintptr_t)&__stack_top, tinyser_reset_handler,
    tinyser_fault_handler, tinyser_fault_handler, tinyser_fault_handler, tinyser_fault_handler,
    tinyser_fault_handler, 0, 0, 0, 0, tinyser_fault_handler, tinyser_fault_handler, 0,
    tinyser_fault_handler, tinyser_fault_handler};
