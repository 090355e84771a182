// Replaced by the quantizer sources as they land.
#include "CQuants.h"
