namespace Identity.Policy.Ast;

/// <summary>Pre-order traversal of an expression tree.</summary>
internal static class ExprWalker
{
    public static void Visit(Expr e, Action<Expr> visit)
    {
        visit(e);
        switch (e)
        {
            case IfExpr x: Visit(x.Condition, visit); Visit(x.Then, visit); Visit(x.Else, visit); break;
            case AndExpr x: Visit(x.Left, visit); Visit(x.Right, visit); break;
            case OrExpr x: Visit(x.Left, visit); Visit(x.Right, visit); break;
            case UnaryExpr x: Visit(x.Operand, visit); break;
            case LikeExpr x: Visit(x.Operand, visit); break;
            case IsExpr x: Visit(x.Operand, visit); break;
            case BinaryExpr x: Visit(x.Left, visit); Visit(x.Right, visit); break;
            case HasAttrExpr x: Visit(x.Operand, visit); break;
            case GetAttrExpr x: Visit(x.Operand, visit); break;
            case SetExpr x: foreach (var el in x.Elements) Visit(el, visit); break;
            case RecordExpr x: foreach (var f in x.Fields) Visit(f.Value, visit); break;
            case ExtCallExpr x: foreach (var a in x.Arguments) Visit(a, visit); break;
            case UnknownFunctionExpr x: foreach (var a in x.Arguments) Visit(a, visit); break;
        }
    }
}
