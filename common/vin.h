/*
 * Vehicle Identification Numbers (ISO 3779): 17 characters from 0-9 and A-Z
 * without I, O and Q. The check digit (position 9) is only mandatory in North
 * America, so it is not enforced here.
 */
#ifndef PITSTOP_VIN_H
#define PITSTOP_VIN_H

#define VIN_LEN 17

/* Returns 1 if s is a well-formed VIN (upper case only), else 0. NULL -> 0. */
int vin_valid(const char *s);

#endif
