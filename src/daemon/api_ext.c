/*
 * api_ext.c — API operations beyond the core deploy/rollback/status set
 * (gates, records, promotion). See api.h for how to add one.
 */
#include "common.h"
#include "daemon/api.h"

const struct api_op api_ops_ext[] = {
	{ NULL, NULL, false },
};
