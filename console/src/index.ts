export * from "./api";
export { ActionButton, describeError, describeOutcome } from "./ActionButton";
export type { ActionButtonProps } from "./ActionButton";
export { ActionBar } from "./ActionBar";
export type { ActionBarProps } from "./ActionBar";
export { RetentionPanel } from "./RetentionPanel";
export type { RetentionPanelProps } from "./RetentionPanel";
