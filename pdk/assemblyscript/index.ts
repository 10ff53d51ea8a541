// The package's entry for `import … from "pirn-pdk-as"` (asc resolves a
// package name to node_modules/<name>/index.ts): the PDK is in assembly/.
export * from "./assembly/index";
