/* The JSON documents ckptbench writes and reads (docjson.h). */
#include "docjson.h"

#include <math.h>

double cb_json_num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *cb_json_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

double cb_json_at(const json_t *arr, size_t i)
{
	const json_t *v = json_array_get(arr, i);
	return json_is_number(v) ? json_number_value(v) : NAN;
}
