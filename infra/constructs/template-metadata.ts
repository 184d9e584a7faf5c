/**
 * Metadata bisearch writes into the synthesized template for the local runner, which reads the
 * deployed definition instead of repeating it: the handler source of each function (its limits
 * are the function's own properties).
 */
export const HANDLER_FILE_METADATA = 'bisearch:handlerFile';
