/** Every fuzz target, grouped by the input it parses. */

import type { FuzzTarget } from "./_target.ts";
import { targets as frames } from "./targets/frames.ts";
import { targets as handshake } from "./targets/handshake.ts";
import { targets as messages } from "./targets/messages.ts";
import { targets as keyLines } from "./targets/key_lines.ts";
import { targets as config } from "./targets/config.ts";
import { targets as envelopes } from "./targets/envelopes.ts";
import { targets as sealed } from "./targets/sealed.ts";
import { targets as recipients } from "./targets/recipients.ts";

/** All targets, in the order reports list them. */
export const ALL_TARGETS: readonly FuzzTarget[] = [
  ...frames,
  ...handshake,
  ...messages,
  ...keyLines,
  ...config,
  ...envelopes,
  ...sealed,
  ...recipients,
];
