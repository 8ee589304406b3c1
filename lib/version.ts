/** The version of ovtp, shown by `ovtp --version` and sent in Welcome. */
export const VERSION = "0.1.0";
