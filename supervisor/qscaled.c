/* qscaled: placeholder until the supervisor lands. */
#include "common.h"

int
main(void)
{
	return 1;
}
