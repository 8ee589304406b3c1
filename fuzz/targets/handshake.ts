import type { FuzzTarget } from "../_target.ts";

export const targets: FuzzTarget[] = [];
