/* qscalectl: placeholder until the control socket lands. */
#include "common.h"

int
main(void)
{
	return 1;
}
