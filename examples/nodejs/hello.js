// The nodejs runtime's hello world: `qinling run examples/nodejs --input '{"name": "you"}'`.
// Called as main(context, input); may be async; what it logs is the execution's log, what it
// returns the result.
exports.main = async (context, input) => {
  const name = (input && input.name) || 'World';
  console.log(`greeting ${name}`);
  return `Hello, ${name}`;
};
