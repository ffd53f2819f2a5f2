/* The durable layer (lib/durable): declarations shared by its modules. Not installed.
 * Below it: the core library's public API (pdwebhook/pdwebhook.h) and lib/util. */
#ifndef PDW_DURABLE_H
#define PDW_DURABLE_H

#include <jansson.h>

#include "pdwebhook/durable.h"
#include "util/util.h"

#endif
