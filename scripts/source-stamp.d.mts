export declare const ROOT: string;
export declare const STAMP_FILE: string;
export declare function sourceStamp(): string;
export declare function distIsFresh(): boolean;
