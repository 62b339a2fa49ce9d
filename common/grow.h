/*
 * Growing arrays, one way everywhere: capacity doubles from a first size,
 * never past a stated maximum (curl's rule: every growable buffer has a
 * bound), and a failure leaves the array as it was.
 */
#ifndef PITSTOP_GROW_H
#define PITSTOP_GROW_H

#include <stddef.h>

/*
 * Makes room for element n of *arr (elements of elem bytes, *cap of them
 * allocated). Returns 0 (with *arr and *cap updated when it grew), -E2BIG
 * when n has reached max, or -ENOMEM (nothing changed).
 */
int grow_for(void **arr, size_t *cap, size_t n, size_t elem, size_t first, size_t max);

#endif
